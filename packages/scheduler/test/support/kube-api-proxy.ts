import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import type { FakeKubeApi } from "@berth/fake-kube-api";

/** A proxy in front of the fake API server that tests can disturb. */
export interface KubeApiProxy {
  kubeConfig(): KubeConfig;
  /** Cuts every open connection, watches included, as a network failure or an API server restart would. */
  dropConnections(): void;
  /** While true, watch requests are answered 503. */
  blockWatches(blocked: boolean): void;
  /** Requests (lists and watches) whose path matches are answered 503, as by an API server that cannot serve that resource; undefined lets all through. */
  blockPaths(pattern: RegExp | undefined): void;
  close(): Promise<void>;
}

/**
 * Starts a proxy to `api` that also serves pod logs from `podLogs` (by pod
 * name, honouring tailLines), which the fake server does not.
 */
export async function createKubeApiProxy(api: FakeKubeApi, podLogs: Record<string, string> = {}): Promise<KubeApiProxy> {
  const upstream = new URL(api.url);
  let watchesBlocked = false;
  let blockedPaths: RegExp | undefined;
  const proxy = createServer((request, response) => {
    const url = new URL(request.url ?? "/", api.url);
    const log = /^\/api\/v1\/namespaces\/[^/]+\/pods\/([^/]+)\/log$/.exec(url.pathname);
    if (log) {
      const text = podLogs[log[1]!];
      const tail = Number(url.searchParams.get("tailLines") ?? "0");
      const lines = (text ?? "").replace(/\n$/, "").split("\n");
      response.writeHead(text === undefined ? 404 : 200, { "content-type": "text/plain" });
      response.end(text === undefined ? "" : `${(tail > 0 ? lines.slice(-tail) : lines).join("\n")}\n`);
      return;
    }
    if ((watchesBlocked && url.searchParams.get("watch") === "true") || blockedPaths?.test(url.pathname)) {
      response.writeHead(503).end();
      return;
    }
    const forwarded = httpRequest(
      { host: upstream.hostname, port: upstream.port, path: request.url, method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on("error", () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const server = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return {
    kubeConfig() {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: "proxy", server, skipTLSVerify: true }],
        users: [{ name: "test" }],
        contexts: [{ name: "proxy", cluster: "proxy", user: "test" }],
        currentContext: "proxy",
      });
      return kubeConfig;
    },
    dropConnections() {
      proxy.closeAllConnections();
    },
    blockWatches(blocked) {
      watchesBlocked = blocked;
    },
    blockPaths(pattern) {
      blockedPaths = pattern;
    },
    close() {
      proxy.closeAllConnections();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
}
