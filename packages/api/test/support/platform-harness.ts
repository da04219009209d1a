import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import type { CallOptions } from "@connectrpc/connect";
import { DEFAULT_MAX_MESSAGE_BYTES, createInternalClient, createLogger, silentLogger } from "@berth/kit";
import { readNetpolConfig, startNetpol } from "@berth/netpol";
import { readRouterConfig, startRouter } from "@berth/router";
import type { RunningRouter } from "@berth/router";
import { readSchedulerConfig, startScheduler } from "@berth/scheduler";
import type { RunningScheduler } from "@berth/scheduler";
import { RouterService } from "@berth/proto/router/v1/router";
import type { SyncTurnCertificatesRequestSchema } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import type { WatchAppsRequestSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { readTurnAllocatorConfig, startTurnAllocator } from "@berth/turn-allocator";
import { startApi } from "../../src/index.js";
import type { ApiConfig, RunningApi, StartApiOptions } from "../../src/index.js";
import type { Rollout, RolloutEventKind } from "@berth/proto/type/v1/release";
import { packSource } from "@berth/kit/source-archive";
import { apiClients, createTeamClients } from "./api-harness.js";
import { testDatabaseUrl, testDatabaseUrlFor } from "@berth/kit/testing";

/** The demo app every service's tests deploy: web, admin-web, worker, release, api-tcp. */
export const DEMO_DIR = resolve(import.meta.dirname, "../../../../examples/demo");

const ADMIN_URL = testDatabaseUrl;
/** The platform's internal credential in these tests, for calls straight to a service. */
export const INTERNAL_TOKEN = "internal-token-for-api-platform-tests";

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** The API in front of the real scheduler, router, turn-allocator and netpol, on a database of its own. */
export interface PlatformHarness {
  api: RunningApi;
  /** The router running now. */
  readonly router: RunningRouter;
  /** Stops the scheduler and starts another on the same port. */
  restartScheduler(): Promise<void>;
  /** Stops the router, runs `whileStopped`, then starts another router on the same RouterService port. */
  restartRouter(whileStopped?: () => Promise<unknown>): Promise<void>;
  config: ApiConfig;
  adminToken: string;
  admin: ReturnType<typeof apiClients>;
  /** Creates a team and a token for it; returns the team's clients. */
  team(name: string): Promise<{ token: string; tokenId: string; clients: ReturnType<typeof apiClients> }>;
}

async function withAdminConnection<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Options of startPlatformHarness. */
export interface PlatformHarnessOptions extends Pick<StartApiOptions, "peerInterceptors"> {
  /**
   * Runs real TURN gateways (coturn) with this extra TURN allocator environment
   * (free port ranges, allowed peers); without it the allocator runs none.
   */
  turnEnv?: Record<string, string>;
  /** Scheduler settings over the harness's quick ones. */
  schedulerEnv?: Record<string, string>;
  /** The API's deadline for a peer call when its client set none (60 s here). */
  callTimeoutMs?: number;
}

/**
 * Starts every service for real on one fresh PostgreSQL database (each owns
 * its schema in it, as in production), with quick health probes and short
 * timeouts, and the API composing them. Everything is closed and dropped
 * when the test ends.
 */
export async function startPlatformHarness(t: Teardown, options: PlatformHarnessOptions = {}): Promise<PlatformHarness> {
  const database = `berth_api_${randomBytes(6).toString("hex")}`;
  await withAdminConnection((client) => client.query(`CREATE DATABASE ${database}`));
  t.teardown(() => withAdminConnection((client) => client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)));
  const databaseUrl = testDatabaseUrlFor(database);
  const dataDir = mkdtempSync(join(tmpdir(), "berth-api-platform-"));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const quiet = createLogger("test", { level: "error" });
  const common = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    DATABASE_URL: databaseUrl,
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN,
    BERTH_LOG_LEVEL: "error",
  };

  const base = {
    host: "127.0.0.1",
    port: 0,
    databaseUrl,
    redisUrl: undefined,
    dataDir,
    internalToken: INTERNAL_TOKEN,
    platformDomain: "berth.localhost",
    logLevel: "error" as const,
    maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  };
  // The allocator follows the scheduler's apps and the scheduler asks it for TURN variables: it
  // starts first and reaches whichever scheduler runs now (a restarted one keeps the port).
  let scheduler: RunningScheduler | undefined;
  const schedulerApps = {
    async *watchApps(request: MessageInitShape<typeof WatchAppsRequestSchema>, callOptions?: CallOptions) {
      if (!scheduler) throw new Error("the scheduler is not up yet");
      yield* createInternalClient(SchedulerService, { baseUrl: scheduler.url, token: INTERNAL_TOKEN }).watchApps(request, callOptions);
    },
  };
  const turnAllocatorConfig = readTurnAllocatorConfig({
    ...common,
    BERTH_TURN_ALLOCATOR_PORT: "0",
    BERTH_TURN_ALLOCATOR_SCHEMA: `turn_test_${randomBytes(6).toString("hex")}`,
    ...options.turnEnv,
  });
  // Likewise the router, which issues the gateways' certificates, starts later (and may restart).
  let routerUrl: string | undefined;
  const routerCertificates = {
    syncTurnCertificates(request: MessageInitShape<typeof SyncTurnCertificatesRequestSchema>, callOptions?: CallOptions) {
      if (!routerUrl) throw new Error("the router is not up yet");
      return createInternalClient(RouterService, { baseUrl: routerUrl, token: INTERNAL_TOKEN }).syncTurnCertificates(request, callOptions);
    },
  };
  const turnAllocator = await startTurnAllocator(turnAllocatorConfig, {
    logger: silentLogger,
    scheduler: schedulerApps,
    router: routerCertificates,
    ...(options.turnEnv ? {} : { gateways: false as const }),
  });
  t.teardown(() => turnAllocator.close(500));

  const schedulerConfig = readSchedulerConfig({
    ...common,
    BERTH_SCHEDULER_PORT: "0",
    // Plain processes: these tests run beside others; the scheduler's own tests cover runc.
    BERTH_LOCAL_RUNTIME: "process",
    BERTH_TURN_ALLOCATOR_URL: turnAllocator.url,
    BERTH_SCHEDULER_HEALTH_INTERVAL_MS: "200",
    BERTH_SCHEDULER_HEALTH_TIMEOUT_MS: "1000",
    BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS: "20000",
    BERTH_SCHEDULER_WORKER_MIN_READY_MS: "200",
    BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "8000",
    BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "2000",
    BERTH_SCHEDULER_STOP_GRACE_MS: "2000",
    BERTH_SCHEDULER_CONSUMER_TIMEOUT_MS: "3000",
    BERTH_SCHEDULER_RESTART_BACKOFF_MS: "200",
    BERTH_SCHEDULER_MAX_RESTART_BACKOFF_MS: "1000",
    BERTH_SCHEDULER_RELEASE_TIMEOUT_MS: "30000",
    BERTH_SCHEDULER_MAX_CHUNK_BYTES: "4096",
    ...options.schedulerEnv,
  });
  scheduler = await startScheduler(schedulerConfig, { logger: quiet });
  t.teardown(() => scheduler?.drain(2000));
  const schedulerUrl = scheduler.url;
  const routerConfig = readRouterConfig({
    ...common,
    BERTH_SCHEDULER_URL: schedulerUrl,
    BERTH_ROUTER_PORT: "0",
    BERTH_ROUTER_HTTP_PORT: "0",
    BERTH_ROUTER_HTTPS_PORT: "0",
    BERTH_ROUTER_CONSUMER: "router-api-test",
  });
  let router = await startRouter(routerConfig, { logger: quiet });
  routerUrl = router.url;
  t.teardown(() => router.close());
  await router.ready;
  const netpol = await startNetpol(readNetpolConfig({ ...common, BERTH_NETPOL_PORT: "0", BERTH_SCHEDULER_URL: schedulerUrl }), { logger: quiet });
  t.teardown(() => netpol.close(500));

  const config: ApiConfig = {
    ...base,
    peers: { scheduler: schedulerUrl, router: router.url, turnAllocator: turnAllocator.url, netpol: netpol.url },
    adminToken: undefined,
    corsOrigins: ["*"],
    callTimeoutMs: options.callTimeoutMs ?? 60_000,
  };
  let announced = "";
  const api = await startApi(config, { logger: quiet, announce: (line) => (announced += line), peerInterceptors: options.peerInterceptors });
  t.teardown(() => api.close(500));
  const adminToken = /(berth_\S+)/.exec(announced)?.[1];
  if (!adminToken) throw new Error(`no admin token was announced: "${announced}"`);
  const admin = apiClients(api.url, adminToken);
  return {
    api,
    get router() {
      return router;
    },
    async restartScheduler() {
      const port = scheduler!.port;
      await scheduler!.close(2000);
      scheduler = await startScheduler({ ...schedulerConfig, port }, { logger: quiet });
    },
    async restartRouter(whileStopped: () => Promise<unknown> = async () => {}) {
      const port = router.port;
      await router.close();
      await whileStopped();
      // The same RouterService port, so that the API finds it again; new proxy ports.
      router = await startRouter({ ...routerConfig, port }, { logger: quiet });
      routerUrl = router.url;
      await router.ready;
    },
    config,
    adminToken,
    admin,
    team: (name) => createTeamClients(admin, api.url, name),
  };
}

export { eventually } from "@berth/kit/testing";

/** Uploads a directory through the API in the chunks it allows; returns the upload id and digest. */
export async function uploadDirectory(clients: ReturnType<typeof apiClients>, app: string, dir = DEMO_DIR) {
  const archive = await packSource(dir);
  const upload = await clients.apps.beginSourceUpload({ app, sizeBytes: BigInt(archive.bytes.length), sha256: archive.sha256 });
  for (let offset = 0; offset < archive.bytes.length; offset += upload.maxChunkBytes) {
    const data = archive.bytes.subarray(offset, offset + upload.maxChunkBytes);
    await clients.apps.uploadSourceChunk({ app, uploadId: upload.uploadId, offset: BigInt(offset), data });
  }
  return { uploadId: upload.uploadId, digest: archive.sha256 };
}

/** Uploads a directory (the demo app by default) and deploys it; returns the deploy's answer. */
export async function deployDirectory(clients: ReturnType<typeof apiClients>, app: string, options: { dir?: string; procfile?: string } = {}) {
  const { uploadId, digest } = await uploadDirectory(clients, app, options.dir);
  return clients.apps.deploy({ app, artifact: { source: { case: "sourceUploadId", value: uploadId }, digest }, procfile: options.procfile ?? "" });
}

/** Follows a rollout through the API to its end; returns the last state and the kinds of its steps. */
export async function followRolloutThroughApi(clients: ReturnType<typeof apiClients>, app: string, rolloutId: string) {
  const kinds: RolloutEventKind[] = [];
  let rollout: Rollout | undefined;
  for await (const step of clients.apps.watchRollout({ app, rolloutId }, { timeoutMs: 120_000 })) {
    kinds.push(step.event!.kind);
    rollout = step.rollout;
  }
  return { rollout: rollout!, kinds };
}
