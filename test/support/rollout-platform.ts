import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { create as createTar } from "tar";
import type { Client } from "@connectrpc/connect";
import { createInternalClient, routeHostname, silentLogger } from "@berth/kit";
import { testDatabaseUrl, testDatabaseUrlFor } from "@berth/kit/testing";
import { readRouterConfig, startRouter } from "@berth/router";
import type { RunningRouter } from "@berth/router";
import { readSchedulerConfig, startScheduler } from "@berth/scheduler";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import type { Rollout, RolloutEvent } from "@berth/proto/type/v1/release";

const INTERNAL_TOKEN = "rollout-platform-test-internal-token";
const PLATFORM_DOMAIN = "berth.localhost";

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A real scheduler and a real router (its proxy on plain HTTP) on a fresh database, closed when the test ends. */
export interface RolloutPlatform {
  scheduler: Client<typeof SchedulerService>;
  router: RunningRouter;
  /** The proxy's HTTP port. */
  proxyPort: number;
  /** The public hostname of an app's `web` process. */
  hostname(app: string): string;
  /** Creates an app whose source is `files` (a web.js at least) and deploys it; returns the rollout's end. */
  deployApp(app: string, files: Record<string, string>, procfile?: string): Promise<{ rollout: Rollout; events: RolloutEvent[] }>;
  /** Uploads `files` as a source archive of `app`; returns the upload id a release names. */
  uploadSource(app: string, files: Record<string, string>): Promise<string>;
}

/** Starts the platform's two services that take part in a rollout through the router. */
export async function startRolloutPlatform(t: Teardown, env: Record<string, string> = {}): Promise<RolloutPlatform> {
  const database = `berth_rollout_${randomBytes(6).toString("hex")}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: testDatabaseUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${database}`);
  t.teardown(() => admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  const dataDir = mkdtempSync(join(tmpdir(), "berth-rollout-"));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const common = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    DATABASE_URL: testDatabaseUrlFor(database),
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN,
    BERTH_LOG_LEVEL: "error",
    BERTH_PLATFORM_DOMAIN: PLATFORM_DOMAIN,
  };
  const scheduler = await startScheduler(
    readSchedulerConfig({
      ...common,
      BERTH_SCHEDULER_PORT: "0",
      BERTH_LOCAL_RUNTIME: "process",
      BERTH_SCHEDULER_HEALTH_INTERVAL_MS: "100",
      BERTH_SCHEDULER_HEALTH_TIMEOUT_MS: "1000",
      BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS: "20000",
      BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "20000",
      BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "3000",
      BERTH_SCHEDULER_STOP_GRACE_MS: "3000",
      BERTH_SCHEDULER_CONSUMER_TIMEOUT_MS: "3000",
      BERTH_SCHEDULER_TRAFFIC_SETTLE_MS: "3000",
      BERTH_SCHEDULER_RESTART_BACKOFF_MS: "200",
      ...env,
    }),
    { logger: silentLogger },
  );
  t.teardown(() => scheduler.drain(2000));
  const router = await startRouter(
    readRouterConfig({
      ...common,
      BERTH_SCHEDULER_URL: scheduler.url,
      BERTH_ROUTER_PORT: "0",
      BERTH_ROUTER_HTTP_PORT: "0",
      BERTH_ROUTER_TLS: "off",
      BERTH_ROUTER_CONSUMER: "router-rollout-test",
      BERTH_ROUTER_TRAFFIC_REPORT_MS: "100",
      ...env,
    }),
    { logger: silentLogger },
  );
  t.teardown(() => router.close());
  await router.ready;
  const client = createInternalClient(SchedulerService, { baseUrl: scheduler.url, token: INTERNAL_TOKEN, timeoutMs: 60_000 });

  async function uploadSource(app: string, files: Record<string, string>): Promise<string> {
    const source = mkdtempSync(join(tmpdir(), "berth-rollout-app-"));
    t.teardown(() => rmSync(source, { recursive: true, force: true }));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(source, name), text);
    const chunks: Buffer[] = [];
    for await (const chunk of createTar({ gzip: true, cwd: source, portable: true }, ["."]) as AsyncIterable<Buffer>) chunks.push(chunk);
    const archive = Buffer.concat(chunks);
    const sha256 = createHash("sha256").update(archive).digest("hex");
    const { uploadId, maxChunkBytes } = await client.beginSourceUpload({ app, sizeBytes: BigInt(archive.length), sha256 });
    for (let offset = 0; offset < archive.length; offset += maxChunkBytes) {
      await client.uploadSourceChunk({ uploadId, offset: BigInt(offset), data: archive.subarray(offset, offset + maxChunkBytes) });
    }
    return uploadId;
  }

  return {
    scheduler: client,
    router,
    proxyPort: router.proxyHttpPort,
    hostname: (app) => routeHostname(app, "web", PLATFORM_DOMAIN)!,
    uploadSource,
    async deployApp(app, files, procfile = "web: node web.js") {
      await client.createApp({ team: "rollouts", name: app });
      const uploadId = await uploadSource(app, files);
      const { rollout } = await client.createRelease({ app, artifact: { source: { case: "sourceUploadId", value: uploadId } }, procfile });
      return followToEnd(client, app, rollout!.id);
    },
  };
}

/** Follows a rollout until its stream ends (after its figures are final); calls `onEvent` on each step. */
export async function followToEnd(
  client: Client<typeof SchedulerService>,
  app: string,
  rolloutId: string,
  onEvent: (event: RolloutEvent) => void = () => {},
): Promise<{ rollout: Rollout; events: RolloutEvent[] }> {
  const events: RolloutEvent[] = [];
  let rollout: Rollout | undefined;
  for await (const step of client.watchRollout({ app, rolloutId }, { timeoutMs: 120_000 })) {
    events.push(step.event!);
    onEvent(step.event!);
    rollout = step.rollout;
  }
  return { rollout: rollout!, events };
}

/** What a load client saw. */
export interface LoadTally {
  requests: number;
  /** Answers the platform made up (502, 503, 504) and requests that got no answer. */
  failed: number;
  /** 500s, which only the app sends in these tests. */
  appErrors: number;
  /** The releases that answered, from answers reading `release <version>`. */
  releases: Set<number>;
}

/**
 * Sends requests through the proxy from `concurrency` keep-alive clients
 * until stopped; every `appErrorEvery`-th request goes to /boom (the test
 * app answers it 500).
 */
export function startLoad(port: number, host: string, options: { concurrency: number; appErrorEvery?: number; path?: string }) {
  const tally: LoadTally = { requests: 0, failed: 0, appErrors: 0, releases: new Set() };
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  let stopped = false;
  let sequence = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      sequence += 1;
      const path = options.appErrorEvery && sequence % options.appErrorEvery === 0 ? "/boom" : (options.path ?? "/work");
      const request = http.get({ host: "127.0.0.1", port, path, agent, headers: { Host: host } }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => {
          tally.requests += 1;
          const status = response.statusCode ?? 0;
          if (status === 500) tally.appErrors += 1;
          else if (status >= 500) tally.failed += 1;
          const release = /^release (\d+)$/.exec(body);
          if (release) tally.releases.add(Number(release[1]));
          resolve();
        });
        response.on("error", () => {
          tally.requests += 1;
          tally.failed += 1;
          resolve();
        });
      });
      request.on("error", () => {
        tally.requests += 1;
        tally.failed += 1;
        resolve();
      });
    });
  const loops = Array.from({ length: options.concurrency }, async () => {
    while (!stopped) await one();
  });
  return {
    tally,
    /** Stops sending and resolves once every request in flight has ended. */
    async stop(): Promise<LoadTally> {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return tally;
    },
  };
}
