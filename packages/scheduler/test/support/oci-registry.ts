import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A tiny OCI distribution registry: manifests by tag, with the headers a real one sends. */
export interface TestRegistry {
  /** host:port, as an image reference names the registry. */
  readonly host: string;
  /** Points `repository:tag` at a new manifest; returns its digest. */
  push(repository: string, tag: string): string;
  /** Manifest requests received (method and path), oldest first. */
  readonly requests: { method: string; path: string; authorized: boolean }[];
  close(): Promise<void>;
}

/**
 * Serves `HEAD|GET /v2/<repository>/manifests/<tag>` answering the OCI
 * image manifest's media type and `Docker-Content-Digest` (the sha256 of the
 * bytes). With `bearer`, manifest requests without the token get 401 and a
 * `WWW-Authenticate: Bearer realm=…` challenge whose token endpoint hands it
 * out anonymously, as Docker Hub and GHCR do for public images. With
 * `omitDigestHeader`, HEAD answers lack the header (the client must hash a GET).
 */
export async function startTestRegistry(options: { bearer?: boolean; omitDigestHeader?: boolean } = {}): Promise<TestRegistry> {
  const manifests = new Map<string, Buffer>();
  const token = randomBytes(8).toString("hex");
  const requests: TestRegistry["requests"] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://registry");
    if (url.pathname === "/token") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ token, scope: url.searchParams.get("scope") }));
      return;
    }
    const match = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      response.writeHead(404).end();
      return;
    }
    const authorized = request.headers.authorization === `Bearer ${token}`;
    requests.push({ method: request.method ?? "", path: url.pathname, authorized });
    if (options.bearer && !authorized) {
      response.writeHead(401, {
        "www-authenticate": `Bearer realm="http://${host}/token",service="test-registry",scope="repository:${match[1]}:pull"`,
        "content-type": "application/json",
      });
      response.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
      return;
    }
    const manifest = manifests.get(`${match[1]}:${decodeURIComponent(match[2]!)}`);
    if (!manifest) {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(request.method === "HEAD" ? undefined : JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
      return;
    }
    const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
    response.writeHead(200, {
      "content-type": "application/vnd.oci.image.manifest.v1+json",
      "content-length": manifest.length,
      ...(options.omitDigestHeader && request.method === "HEAD" ? {} : { "docker-content-digest": digest }),
    });
    response.end(request.method === "HEAD" ? undefined : manifest);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    push(repository, tag) {
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${randomBytes(32).toString("hex")}`, size: 2 },
          layers: [],
        }),
      );
      manifests.set(`${repository}:${tag}`, manifest);
      return `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
