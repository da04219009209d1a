/**
 * TURN benchmark, in one run:
 *  1. credentials/s minted through the public API (RtcService.GetCredentials:
 *     the API mints from the secrets the TURN allocator streams to it, one
 *     hop) against a bare Connect echo of the same answer served by the same
 *     kit (target: at least 0.8 of the echo);
 *  2. the allocator's own minting (its MintCredentials handler, in process)
 *     against raw HMAC-SHA1 of a TURN username (target: at least 0.3);
 *  3. allocations/s: EnsureAllocation of new rtc processes over gRPC, each a
 *     transaction on PostgreSQL that takes the lowest free port.
 *
 *   npx tsx bench/turn-credentials.ts [seconds per run, default 5] [concurrent calls, default 16]
 *
 * The scheduler, the TURN allocator, the API and the echo each run in their
 * own process (this file, in different roles), so that they compete for the
 * CPU as they would on one host; the runs compared alternate in slices. The
 * allocator keeps its data in PostgreSQL (DATABASE_URL, or the local test
 * database) in a schema of its own, dropped at the end; the scheduler and the
 * API on their embedded databases. Besides calls/s, each run reports the CPU
 * time per call of the processes serving it, which other programs on the
 * machine do not skew.
 */
import type { ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { createCoordination, createInternalClient, openDatabase, readCommonConfig, servePartial, silentLogger, startServer } from "@berth/kit";
import { AppService } from "@berth/proto/api/v1/apps";
import { TeamService } from "@berth/proto/api/v1/identity";
import { GetCredentialsResponseSchema, RtcService } from "@berth/proto/api/v1/network";
import { EnsureAllocationRequestSchema, MintCredentialsRequestSchema, TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import { readSchedulerConfig, startScheduler } from "@berth/scheduler";
import { readTurnAllocatorConfig, startTurnAllocator } from "@berth/turn-allocator";
import { startApi } from "../packages/api/src/index.js";
import { createMintingTargets } from "../packages/turn-allocator/src/minting-targets.js";
import { createTurnAllocatorService } from "../packages/turn-allocator/src/service.js";
import { createAllocationStore } from "../packages/turn-allocator/src/store/allocation-store.js";
import { turnAllocatorMigrations } from "../packages/turn-allocator/src/store/migrations.js";
import { answerCpuRequests } from "./support/child-cpu.js";
import { compare } from "./support/compare.js";
import type { Result } from "./support/compare.js";
import { startRole, stopRole } from "./support/roles.js";

const self = fileURLToPath(import.meta.url);
const INTERNAL_TOKEN = "internal-token-for-the-turn-bench";
const APP = "bench-app";
const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
// Minting is rate-limited per app; the bench measures the cost of a mint, not the limit.
const UNLIMITED_MINTS = "100000000";

const baseEnv = (dataDir: string) => ({ BERTH_DATA_DIR: dataDir, BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN, BERTH_LOG_LEVEL: "error" });

// ---- roles ----

async function runScheduler(dataDir: string): Promise<void> {
  const scheduler = await startScheduler(readSchedulerConfig({ ...baseEnv(dataDir), BERTH_SCHEDULER_PORT: "0" }), { logger: silentLogger });
  process.once("SIGTERM", () => void scheduler.close(1000).then(() => process.exit(0)));
  process.send!({ url: scheduler.url });
}

async function runAllocator(dataDir: string, schema: string): Promise<void> {
  const config = readTurnAllocatorConfig({
    ...baseEnv(dataDir),
    DATABASE_URL: POSTGRES_URL,
    BERTH_TURN_ALLOCATOR_SCHEMA: schema,
    BERTH_TURN_ALLOCATOR_PORT: "0",
    BERTH_TURN_MINTS_PER_MINUTE: UNLIMITED_MINTS,
    BERTH_TURN_PORT_RANGE: "20000-39999",
    BERTH_TURN_RELAY_PORT_RANGE: "40000-59999",
    BERTH_TURN_RELAY_PORTS_PER_GATEWAY: "2",
  });
  // No gateways: twenty thousand coturn processes would measure coturn, not the allocator.
  const allocator = await startTurnAllocator(config, { logger: silentLogger, gateways: false, scheduler: false });
  process.once("SIGTERM", () => void allocator.close(1000).then(() => process.exit(0)));
  process.send!({ url: allocator.url });
}

async function runApi(dataDir: string, schedulerUrl: string, allocatorUrl: string): Promise<void> {
  let adminToken = "";
  const api = await startApi(
    {
      ...readCommonConfig({ ...baseEnv(dataDir), BERTH_API_PORT: "0" }, "api"),
      peers: { scheduler: schedulerUrl, router: "http://127.0.0.1:1", turnAllocator: allocatorUrl, netpol: "http://127.0.0.1:1" },
      adminToken: undefined,
      corsOrigins: ["*"],
      callTimeoutMs: 10_000,
    },
    { logger: silentLogger, announce: (line) => (adminToken = /(berth_\S+)/.exec(line)?.[1] ?? "") },
  );
  process.once("SIGTERM", () => void api.close(1000).then(() => process.exit(0)));
  process.send!({ url: api.url, adminToken });
}

async function runEcho(answerJson: string): Promise<void> {
  // The very answer the API gave, with no work behind it.
  const answer = fromJsonString(GetCredentialsResponseSchema, answerJson);
  const server = await startServer({ name: "echo", port: 0, logger: silentLogger, services: [servePartial(RtcService, { getCredentials: () => answer })] });
  process.send!({ url: server.url });
}

// ---- load ----

/** Calls/s of `fn` run back to back in this process for `seconds`. */
function inProcessRate(seconds: number, fn: () => unknown): number {
  const deadline = performance.now() + seconds * 1000;
  let calls = 0;
  const started = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) fn();
    calls += 1000;
  }
  return calls / ((performance.now() - started) / 1000);
}

/** Calls/s of the async `fn` run back to back in this process for `seconds`. */
async function inProcessAsyncRate(seconds: number, fn: () => Promise<unknown>): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let calls = 0;
  const started = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) await fn();
    calls += 1000;
  }
  return calls / ((performance.now() - started) / 1000);
}

/** The allocator's MintCredentials handler on its real store and in-process rate limits, against raw HMAC-SHA1. */
async function mintingInProcess(seconds: number, schema: string): Promise<{ mint: number; hmac: number }> {
  const database = await openDatabase({ service: "turn-allocator", schema, migrations: turnAllocatorMigrations, databaseUrl: POSTGRES_URL });
  const coordination = createCoordination();
  try {
    const store = createAllocationStore(database);
    const service = createTurnAllocatorService({
      store,
      pools: { portRange: { first: 20000, last: 39999 }, relayRange: { first: 40000, last: 59999 }, relayPortsPerGateway: 2 },
      naming: { platformDomain: "berth.localhost", realm: "berth.localhost" },
      credentialTtl: { defaultSeconds: 3600, minSeconds: 60, maxSeconds: 86400 },
      rotationGraceSeconds: 3600,
      mintsPerMinute: Number(UNLIMITED_MINTS),
      rateLimits: coordination.rateLimits,
      mintingTargets: createMintingTargets(store, 5_000),
      announceChange: async () => {},
      onChange: () => () => {},
    });
    // The handlers read nothing from their context.
    const context = {} as HandlerContext;
    await service.ensureAllocation(create(EnsureAllocationRequestSchema, { team: "bench", app: "in-process", processType: "sfu-rtc", replicas: 1 }), context);
    const request = create(MintCredentialsRequestSchema, { app: "in-process", processType: "sfu-rtc", user: "alice" });
    const secret = randomBytes(32).toString("base64url");
    const raw = () =>
      createHmac("sha1", secret)
        .update(`${Math.floor(Date.now() / 1000) + 3600}:alice`)
        .digest("base64");
    // Alternating halves, as the other comparisons do.
    const mint: number[] = [];
    const hmac: number[] = [];
    for (let round = 0; round < 4; round++) {
      mint.push(await inProcessAsyncRate(seconds / 4, async () => service.mintCredentials(request, context)));
      hmac.push(inProcessRate(seconds / 4, raw));
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    return { mint: mean(mint), hmac: mean(hmac) };
  } finally {
    await coordination.close();
    await database.close();
  }
}

async function dropSchemas(schemas: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}

function bearerTransport(url: string, token?: string) {
  return createGrpcTransport({
    baseUrl: url,
    interceptors: [
      (next) => (request) => {
        if (token) request.header.set("authorization", `Bearer ${token}`);
        return next(request);
      },
    ],
  });
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const concurrency = Number(process.argv[3] ?? 16);
  const children: ChildProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "berth-turn-bench-"));
  const suffix = randomBytes(4).toString("hex");
  const schemas = [`turn_bench_${suffix}`, `turn_bench_inproc_${suffix}`];
  try {
    const scheduler = await startRole(self, "scheduler", [dataDir]);
    children.push(scheduler.child);
    const allocator = await startRole(self, "allocator", [dataDir, schemas[0]!]);
    children.push(allocator.child);
    const api = await startRole(self, "api", [dataDir, scheduler.ready.url!, allocator.ready.url!]);
    children.push(api.child);

    const adminTransport = bearerTransport(api.ready.url!, api.ready.adminToken);
    const teams = createClient(TeamService, adminTransport);
    await teams.createTeam({ name: "bench" });
    const { secret } = await teams.createToken({ team: "bench" });
    await createClient(AppService, bearerTransport(api.ready.url!, secret)).createApp({ name: APP });
    const internal = createInternalClient(TurnAllocatorService, { baseUrl: allocator.ready.url!, token: INTERNAL_TOKEN });
    await internal.ensureAllocation({ team: "bench", app: APP, processType: "sfu-rtc", replicas: 2 });

    const viaApi = createClient(RtcService, bearerTransport(api.ready.url!, secret));
    const request = { app: APP, processType: "sfu-rtc", user: "alice" };
    const echo = await startRole(self, "echo", [toJsonString(GetCredentialsResponseSchema, await viaApi.getCredentials(request))]);
    children.push(echo.child);
    const viaEcho = createClient(RtcService, bearerTransport(echo.ready.url!));

    const rounds = 4;
    console.log(
      `turn-credentials: ${seconds}s per run in ${rounds} alternating slices, ${concurrency} concurrent gRPC calls, allocator on PostgreSQL, ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)}`,
    );
    const platform = [scheduler.child, allocator.child, api.child];
    let next = 0;
    const results: Record<string, Result> = {
      ...(await compare(seconds, concurrency, rounds, {
        "echo GetCredentials": { call: () => viaEcho.getCredentials(request), servers: [echo.child] },
        "api  GetCredentials": { call: () => viaApi.getCredentials(request), servers: platform },
      })),
      ...(await compare(seconds, concurrency, 1, {
        "allocator MintCredentials": { call: () => internal.mintCredentials(request), servers: [allocator.child] },
        "allocator EnsureAllocation (new)": {
          call: () => internal.ensureAllocation({ team: "bench", app: `alloc-${next++}`, processType: "sfu-rtc", replicas: 1 }),
          servers: [allocator.child],
        },
      })),
    };
    console.log(`${"".padEnd(34)} ${"calls/s".padStart(8)}   ${"p50 ms".padStart(7)}   ${"p99 ms".padStart(7)}   servers' CPU ms/call`);
    for (const [name, r] of Object.entries(results)) {
      console.log(
        `${name.padEnd(34)} ${r.rate.toFixed(0).padStart(8)}   ${r.p50.toFixed(2).padStart(7)}   ${r.p99.toFixed(2).padStart(7)}   ${r.cpuMsPerCall.toFixed(3).padStart(7)}`,
      );
    }
    const inProcess = await mintingInProcess(seconds, schemas[1]!);
    console.log(`${"in process: MintCredentials handler".padEnd(34)} ${inProcess.mint.toFixed(0).padStart(8)}`);
    console.log(`${"in process: raw HMAC-SHA1".padEnd(34)} ${inProcess.hmac.toFixed(0).padStart(8)}`);
    const api_ = results["api  GetCredentials"]!;
    const echo_ = results["echo GetCredentials"]!;
    console.log(
      `credentials through the API / echo:  ${(api_.rate / echo_.rate).toFixed(2)}  (target >= 0.8); CPU per call: ${(api_.cpuMsPerCall / echo_.cpuMsPerCall).toFixed(1)}x the echo's`,
    );
    console.log(`allocator minting / raw HMAC-SHA1:   ${(inProcess.mint / inProcess.hmac).toFixed(2)}  (target >= 0.3)`);
    console.log(`allocations/s (new rtc processes):   ${results["allocator EnsureAllocation (new)"]!.rate.toFixed(0)}`);
  } finally {
    await Promise.all(children.map((child) => stopRole(child)));
    rmSync(dataDir, { recursive: true, force: true });
    await dropSchemas(schemas);
  }
}

const [role, ...args] = process.argv.slice(2);
// Every role reports how much CPU it has used, so a run's cost per call can be told apart from other programs'.
if (role !== undefined) answerCpuRequests();
if (role === "scheduler") await runScheduler(args[0]!);
else if (role === "allocator") await runAllocator(args[0]!, args[1]!);
else if (role === "api") await runApi(args[0]!, args[1]!, args[2]!);
else if (role === "echo") {
  process.once("SIGTERM", () => process.exit(0));
  await runEcho(args[0]!);
} else await main();
