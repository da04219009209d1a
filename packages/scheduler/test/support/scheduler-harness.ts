import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ExecutionContext } from "ava";
import pg from "pg";
import { create as createTar } from "tar";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { createInternalClient, createLogger } from "@berth/kit";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import type { Replica } from "@berth/proto/type/v1/process";
import type { Rollout, RolloutEvent } from "@berth/proto/type/v1/release";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { removeHostNetwork } from "../../src/engine/local/container/runc-replica-runtime.js";
import { readSchedulerConfig, startScheduler } from "../../src/index.js";
import type { RunningScheduler } from "../../src/index.js";
import { eventually, testDatabaseUrl } from "@berth/kit/testing";

export const DATABASE_URL = testDatabaseUrl;
export const DEMO_DIR = resolve(import.meta.dirname, "../../../../examples/demo");
export const INTERNAL_TOKEN = "scheduler-test-internal-token";

/** The environment of a scheduler under test: quick probes, short timeouts, its own schema and data directory. */
export function testEnvironment(dataDir: string, schema: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    BERTH_DATA_DIR: dataDir,
    BERTH_SCHEDULER_PORT: "0",
    BERTH_SCHEDULER_SCHEMA: schema,
    BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN,
    BERTH_LOG_LEVEL: "warn",
    DATABASE_URL,
    BERTH_SCHEDULER_HEALTH_INTERVAL_MS: "200",
    BERTH_SCHEDULER_HEALTH_TIMEOUT_MS: "1000",
    BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS: "20000",
    BERTH_SCHEDULER_WORKER_MIN_READY_MS: "200",
    BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "30000",
    BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "3000",
    BERTH_SCHEDULER_STOP_GRACE_MS: "3000",
    BERTH_SCHEDULER_CONSUMER_TIMEOUT_MS: "3000",
    BERTH_SCHEDULER_RESTART_BACKOFF_MS: "200",
    BERTH_SCHEDULER_MAX_RESTART_BACKOFF_MS: "1000",
    BERTH_SCHEDULER_RELEASE_TIMEOUT_MS: "30000",
    BERTH_SCHEDULER_MAX_CHUNK_BYTES: "4096",
    // Plain processes unless a test asks for containers (with a subnet of its own): tests run side by side.
    BERTH_LOCAL_RUNTIME: "process",
    // The tests' images live on no registry; a test that pins by digest brings its own.
    BERTH_RESOLVE_IMAGE_DIGESTS: "false",
    ...overrides,
  };
}

/** A fresh schema name and data directory, removed when the test ends. */
export async function isolation(t: ExecutionContext): Promise<{ dataDir: string; schema: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), "berth-scheduler-"));
  const schema = `scheduler_test_${randomBytes(5).toString("hex")}`;
  t.teardown(async () => {
    await rm(dataDir, { recursive: true, force: true });
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  return { dataDir, schema };
}

/** A scheduler serving on a free port, and a real gRPC client for it; both closed when the test ends. */
export async function startTestScheduler(
  t: ExecutionContext,
  overrides: Record<string, string> = {},
  where?: { dataDir: string; schema: string },
): Promise<{ scheduler: RunningScheduler; client: Client<typeof SchedulerService>; dataDir: string; schema: string }> {
  const place = where ?? (await isolation(t));
  const config = readSchedulerConfig(testEnvironment(place.dataDir, place.schema, overrides));
  const scheduler = await startScheduler(config, { logger: createLogger("scheduler", { level: "error" }) });
  t.teardown(() => scheduler.drain(1000));
  return { scheduler, client: schedulerClient(scheduler.url), ...place };
}

/**
 * A scheduler on runc with a subnet of its own (so other schedulers on this
 * host never share its bridge or rules); once it has stopped (and removed its
 * containers), its bridge, nft table, cgroup parent and runc state go too.
 */
export async function startRuncScheduler(t: ExecutionContext) {
  const subnetText = `10.${150 + (process.pid % 40)}.${Math.floor(Math.random() * 250)}.0/24`;
  const started = await startTestScheduler(t, { BERTH_LOCAL_RUNTIME: "runc", BERTH_LOCAL_SUBNET: subnetText });
  t.teardown(async () => {
    await started.scheduler.close(1000);
    await removeHostNetwork(subnetText);
  });
  return { ...started, subnetText };
}

/** A gRPC client with the internal credential. */
export function schedulerClient(url: string): Client<typeof SchedulerService> {
  return createInternalClient(SchedulerService, { baseUrl: url, token: INTERNAL_TOKEN, timeoutMs: 60_000 });
}

/** The demo app as a tar.gz. */
export async function demoArchive(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = createTar({ gzip: true, cwd: DEMO_DIR, portable: true }, ["."]);
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Uploads an archive in chunks of the size the scheduler allows; returns the upload id. */
export async function uploadArchive(client: Client<typeof SchedulerService>, app: string, archive: Buffer): Promise<string> {
  const sha256 = createHash("sha256").update(archive).digest("hex");
  const { uploadId, maxChunkBytes } = await client.beginSourceUpload({ app, sizeBytes: BigInt(archive.length), sha256 });
  for (let offset = 0; offset < archive.length; offset += maxChunkBytes) {
    await client.uploadSourceChunk({ uploadId, offset: BigInt(offset), data: archive.subarray(offset, offset + maxChunkBytes) });
  }
  return uploadId;
}

/** Follows a rollout to its end; returns its last state and every step. */
export async function followRollout(
  client: Client<typeof SchedulerService>,
  app: string,
  rolloutId: string,
): Promise<{ rollout: Rollout; events: RolloutEvent[] }> {
  const events: RolloutEvent[] = [];
  let rollout: Rollout | undefined;
  for await (const step of client.watchRollout({ app, rolloutId }, { timeoutMs: 120_000 })) {
    events.push(step.event!);
    rollout = step.rollout;
  }
  return { rollout: rollout!, events };
}

/** Deploys the demo app (with `procfile`, or the archive's) and follows the rollout to its end. */
export async function deployDemo(
  client: Client<typeof SchedulerService>,
  app: string,
  options: { procfile?: string; uploadId?: string } = {},
): Promise<{ rollout: Rollout; events: RolloutEvent[]; version: number }> {
  const uploadId = options.uploadId ?? (await uploadArchive(client, app, await demoArchive()));
  const { release, rollout } = await client.createRelease({
    app,
    artifact: { source: { case: "sourceUploadId", value: uploadId } },
    procfile: options.procfile ?? "",
  });
  return { ...(await followRollout(client, app, rollout!.id)), version: release!.version };
}

/** The kinds of a rollout's steps, for assertions. */
export function kinds(events: RolloutEvent[]): string[] {
  return events.map((event) => RolloutEventKind[event.kind]);
}

/** GET on a replica. */
export function httpGet(port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => resolvePromise({ status: response.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** The ready replicas of a type. */
export async function readyReplicas(client: Client<typeof SchedulerService>, app: string, processType: string): Promise<Replica[]> {
  const { replicas } = await client.listReplicas({ app, processType });
  return replicas.filter((replica) => replica.ready);
}

export { eventually };

/** Deploys the demo with a worker that ignores SIGTERM, and waits for it to run. */
export async function deployStubborn(client: Client<typeof SchedulerService>, app: string): Promise<void> {
  const stubborn = `node -e "process.on('SIGTERM',()=>console.log('ignoring SIGTERM')); setInterval(()=>{},1000)"`;
  await deployDemo(client, app, { procfile: `web: node web.js\nworker: ${stubborn}\n` });
  await client.updateFormation({ app, changes: [{ processType: "worker", replicas: 1 }] });
  await eventually(async () => ((await readyReplicas(client, app, "worker")).length === 1 ? true : undefined), "the worker running");
}

/** Whether the scheduler no longer knows the app. */
export async function appGone(client: Client<typeof SchedulerService>, app: string): Promise<boolean> {
  return client.getApp({ name: app }).then(
    () => false,
    (error: unknown) => ConnectError.from(error).code === Code.NotFound,
  );
}
