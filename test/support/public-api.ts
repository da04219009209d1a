import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService } from "@berth/proto/api/v1/network";
import { RolloutState } from "@berth/proto/type/v1/release";
import type { Rollout } from "@berth/proto/type/v1/release";

const run = promisify(execFile);

/** The public API as a browser sees it: the Connect protocol over HTTP/1.1 with a bearer token. */
export interface PublicApi {
  teams: Client<typeof TeamService>;
  apps: Client<typeof AppService>;
  formation: Client<typeof FormationService>;
  domains: Client<typeof DomainService>;
}

/** Connect over HTTP/1.1, the way Connect-Web calls from a browser. */
export function browserLikeTransport(baseUrl: string, token: string): Transport {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer], defaultTimeoutMs: 30_000 });
}

/** Clients of every public service for one token. */
export function publicApi(baseUrl: string, token: string): PublicApi {
  const transport = browserLikeTransport(baseUrl, token);
  return {
    teams: createClient(TeamService, transport),
    apps: createClient(AppService, transport),
    formation: createClient(FormationService, transport),
    domains: createClient(DomainService, transport),
  };
}

/** A tar.gz of a directory, as `berth deploy` uploads it. */
export async function archiveOf(directory: string): Promise<Buffer> {
  const out = mkdtempSync(join(tmpdir(), "berth-archive-"));
  try {
    const file = join(out, "source.tar.gz");
    await run("tar", ["-czf", file, "-C", directory, "."]);
    return readFileSync(file);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const FINAL_STATES = new Set([RolloutState.SUCCEEDED, RolloutState.FAILED, RolloutState.ROLLED_BACK]);

/** Follows a rollout's progress stream until it ends; returns the final rollout and every event kind seen. */
export async function followRollout(api: PublicApi, app: string, rolloutId: string): Promise<{ rollout: Rollout; events: string[] }> {
  const events: string[] = [];
  let last: Rollout | undefined;
  // Connect does not clear a stream's deadline timer when the stream ends
  // early, and a pending timer keeps the test process alive: the deadline
  // comes from an unref'd AbortSignal.timeout instead.
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(180_000)]);
  try {
    for await (const update of api.apps.watchRollout({ app, rolloutId }, { timeoutMs: 0, signal })) {
      if (update.event) events.push(`${update.event.kind}:${update.event.processType}`);
      if (update.rollout) last = update.rollout;
      if (last && FINAL_STATES.has(last.state)) break;
    }
  } finally {
    stop.abort();
  }
  if (!last) throw new Error(`rollout ${rolloutId} of ${app} streamed no state`);
  return { rollout: last, events };
}

/** Uploads a directory in chunks and deploys it; returns the rollout's final state. */
export async function deployDirectory(
  api: PublicApi,
  app: string,
  directory: string,
  procfile: string,
): Promise<{ version: number; rollout: Rollout; events: string[] }> {
  const archive = await archiveOf(directory);
  const sha256 = createHash("sha256").update(archive).digest("hex");
  const upload = await api.apps.beginSourceUpload({ app, sizeBytes: BigInt(archive.length), sha256 });
  const chunk = Math.max(1024, upload.maxChunkBytes);
  for (let offset = 0; offset < archive.length; offset += chunk) {
    await api.apps.uploadSourceChunk({ app, uploadId: upload.uploadId, offset: BigInt(offset), data: archive.subarray(offset, offset + chunk) });
  }
  const deployed = await api.apps.deploy({ app, artifact: { source: { case: "sourceUploadId", value: upload.uploadId } }, procfile });
  const followed = await followRollout(api, app, deployed.rollout!.id);
  return { version: deployed.release!.version, ...followed };
}

/** GET over plain HTTP through the router's proxy, with Host set to `hostname`. */
export function httpGet(port: number, hostname: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, path, headers: { host: hostname }, timeout: 15_000, agent: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("timeout", () => request.destroy(new Error(`GET http://${hostname}${path} timed out`)));
    request.on("error", reject);
    request.end();
  });
}

/** GET over HTTPS through the router's proxy, with SNI and Host set to `hostname`, trusting `ca`; with the served certificate's SHA-256 fingerprint. */
export function httpsGet(port: number, hostname: string, path: string, ca: string): Promise<{ status: number; body: string; certificate: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      { host: "127.0.0.1", port, path, servername: hostname, headers: { host: hostname }, ca, timeout: 15_000, agent: false },
      (response) => {
        const certificate = (response.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body, certificate }));
      },
    );
    request.on("timeout", () => request.destroy(new Error(`GET https://${hostname}${path} timed out`)));
    request.on("error", reject);
    request.end();
  });
}
