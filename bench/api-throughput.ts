/**
 * Public API benchmark: requests/s, p50 and p99 of a read (GetFormation, the
 * `pods` view) and a write (Scale) through the API, against a bare Connect
 * echo of the same answer served by the same kit, in one run; then the ratios.
 *
 *   npx tsx bench/api-throughput.ts [seconds per run, default 5] [concurrent calls, default 16]
 *
 * Each party runs in its own process (this file, in different roles): the
 * real scheduler and router, the API, the echo, and the load generator, so
 * that they compete for the CPU as they would on one host. Every service
 * keeps its data in PostgreSQL when DATABASE_URL is set (each in a schema of
 * a fresh database), else on the embedded PostgreSQL cluster, as `npm start` does.
 * The app read and scaled is a real one: the demo app, deployed first.
 *
 * The runs compared with each other alternate in slices, so that whatever
 * else the machine is doing weighs on both alike. Besides requests/s each
 * run reports the CPU time per call of the processes serving it (the echo;
 * or the API, scheduler and router, not PostgreSQL), which other programs on
 * the machine do not skew. "own app" reads give every concurrent caller its
 * own (undeployed) app, so no two calls share a read of the scheduler.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import pg from "pg";
import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DEFAULT_MAX_MESSAGE_BYTES, createInternalClient, servePartial, silentLogger, startServer } from "@berth/kit";
import { RouterService } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService, GetFormationResponseSchema } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { readRouterConfig, startRouter } from "@berth/router";
import { readSchedulerConfig, startScheduler } from "@berth/scheduler";
import { startApi } from "../packages/api/src/index.js";
import { packSource } from "@berth/kit/source-archive";
import { answerCpuRequests } from "./support/child-cpu.js";
import { compare } from "./support/compare.js";
import type { Result } from "./support/compare.js";
import { startRole, stopRole } from "./support/roles.js";

const self = fileURLToPath(import.meta.url);
const INTERNAL_TOKEN = "internal-token-for-the-api-bench";
const APP = "bench-app";
const DEMO_DIR = resolve(import.meta.dirname, "../examples/demo");

// BENCH_CPU_PROF_DIR=<dir> writes CPU profiles of each role under <dir>/<role>/ (one per thread: the
// largest is the main thread's, the others tsx's loader).
function startProfiledRole(name: string, args: string[] = [], env: Record<string, string> = {}) {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return startRole(self, name, args, { env, nodeFlags: dir ? ["--cpu-prof", `--cpu-prof-dir=${join(dir, name)}`] : [] });
}

// ---- roles: scheduler, router ----

function serviceEnvironment(dataDir: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN,
    BERTH_LOG_LEVEL: "error",
  };
  if (process.env.BENCH_DATABASE_URL) env.DATABASE_URL = process.env.BENCH_DATABASE_URL;
  return env;
}

async function runScheduler(dataDir: string): Promise<void> {
  const scheduler = await startScheduler(readSchedulerConfig({ ...serviceEnvironment(dataDir), BERTH_SCHEDULER_PORT: "0" }), { logger: silentLogger });
  process.once("SIGTERM", () => void scheduler.drain(1000).then(() => process.exit(0)));
  process.send!({ url: scheduler.url });
}

async function runRouter(dataDir: string, schedulerUrl: string): Promise<void> {
  const router = await startRouter(
    readRouterConfig({
      ...serviceEnvironment(dataDir),
      BERTH_SCHEDULER_URL: schedulerUrl,
      BERTH_ROUTER_PORT: "0",
      BERTH_ROUTER_HTTP_PORT: "0",
      BERTH_ROUTER_HTTPS_PORT: "0",
    }),
    { logger: silentLogger },
  );
  await router.ready;
  process.once("SIGTERM", () => void router.close().then(() => process.exit(0)));
  process.send!({ url: router.url });
}

// ---- role: api ----

async function runApi(dataDir: string, schedulerUrl: string, routerUrl: string): Promise<void> {
  let adminToken = "";
  const api = await startApi(
    {
      host: "127.0.0.1",
      port: 0,
      databaseUrl: process.env.BENCH_DATABASE_URL,
      redisUrl: undefined,
      dataDir,
      internalToken: INTERNAL_TOKEN,
      platformDomain: "berth.localhost",
      logLevel: "error",
      maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
      peers: { scheduler: schedulerUrl, router: routerUrl, turnAllocator: "http://127.0.0.1:1", netpol: "http://127.0.0.1:1" },
      adminToken: undefined,
      corsOrigins: ["*"],
      callTimeoutMs: 10_000,
    },
    { logger: silentLogger, announce: (line) => (adminToken = /(berth_\S+)/.exec(line)?.[1] ?? "") },
  );
  process.once("SIGTERM", () => void api.close(1000).then(() => process.exit(0)));
  process.send!({ url: api.url, adminToken });
}

// ---- role: echo ----

async function runEcho(formationJson: string): Promise<void> {
  // The very answer the API gave for the demo app, with no work behind it.
  const { processes } = fromJsonString(GetFormationResponseSchema, formationJson);
  const server = await startServer({
    name: "echo",
    port: 0,
    logger: silentLogger,
    services: [servePartial(FormationService, { getFormation: () => ({ processes }), scale: () => ({ processes }) })],
  });
  process.send!({ url: server.url });
}

// ---- role: load generator ----

function apiClients(url: string, token: string) {
  const transport = createGrpcTransport({
    baseUrl: url,
    interceptors: [
      (next) => (request) => {
        request.header.set("authorization", `Bearer ${token}`);
        return next(request);
      },
    ],
  });
  return { teams: createClient(TeamService, transport), apps: createClient(AppService, transport), formation: createClient(FormationService, transport) };
}

function formationClient(url: string, token?: string): Client<typeof FormationService> {
  const bearer: Interceptor = (next) => (request) => {
    if (token) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  return createClient(FormationService, createGrpcTransport({ baseUrl: url, interceptors: [bearer] }));
}

async function createDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) return undefined;
  const name = `berth_api_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const concurrency = Number(process.argv[3] ?? 16);
  const children: ChildProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "berth-api-bench-"));
  const database = await createDatabase();
  const env: Record<string, string> = database ? { BENCH_DATABASE_URL: database.url } : {};
  try {
    const scheduler = await startProfiledRole("scheduler", [dataDir], env);
    children.push(scheduler.child);
    const router = await startProfiledRole("router", [dataDir, scheduler.ready.url!], env);
    children.push(router.child);
    const api = await startProfiledRole("api", [dataDir, scheduler.ready.url!, router.ready.url!], env);
    children.push(api.child);

    const admin = apiClients(api.ready.url!, api.ready.adminToken!);
    await admin.teams.createTeam({ name: "bench" });
    const { secret } = await admin.teams.createToken({ team: "bench" });
    const team = apiClients(api.ready.url!, secret);
    await team.apps.createApp({ name: APP });
    const archive = await packSource(DEMO_DIR);
    const upload = await team.apps.beginSourceUpload({ app: APP, sizeBytes: BigInt(archive.bytes.length), sha256: archive.sha256 });
    for (let offset = 0; offset < archive.bytes.length; offset += upload.maxChunkBytes) {
      await team.apps.uploadSourceChunk({
        app: APP,
        uploadId: upload.uploadId,
        offset: BigInt(offset),
        data: archive.bytes.subarray(offset, offset + upload.maxChunkBytes),
      });
    }
    const deployed = await team.apps.deploy({ app: APP, artifact: { source: { case: "sourceUploadId", value: upload.uploadId } } });
    for await (const _ of team.apps.watchRollout({ app: APP, rolloutId: deployed.rollout!.id }));
    const formation = await team.formation.getFormation({ app: APP });

    const echo = await startProfiledRole("echo", [toJsonString(GetFormationResponseSchema, formation)]);
    children.push(echo.child);

    const viaApi = formationClient(api.ready.url!, secret);
    const viaEcho = formationClient(echo.ready.url!);
    // The write path without process churn: every call stores web=1, the count web already has
    // (scaling a type up and down would measure process start-up, not the API).
    const scale = (client: Client<typeof FormationService>) => () => client.scale({ app: APP, replicas: { web: 1 } });
    const read = (client: Client<typeof FormationService>) => () => client.getFormation({ app: APP });

    // Each concurrent caller its own app: no two calls want the same formation at once.
    const ownApps = Array.from({ length: concurrency }, (_, worker) => `${APP}-${worker}`);
    for (const name of ownApps) await team.apps.createApp({ name });
    const readOwn = (client: Client<typeof FormationService>) => (worker: number) => client.getFormation({ app: ownApps[worker]! });

    const rounds = 4;
    console.log(
      `api-throughput: ${seconds}s per run in ${rounds} alternating slices, ${concurrency} concurrent gRPC calls, stores on ${database ? "PostgreSQL" : "the embedded PostgreSQL"}, ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)}`,
    );
    // What the API's calls are made of, each peer call on its own.
    const schedulerClient = createInternalClient(SchedulerService, { baseUrl: scheduler.ready.url!, token: INTERNAL_TOKEN });
    const routerClient = createInternalClient(RouterService, { baseUrl: router.ready.url!, token: INTERNAL_TOKEN });
    const platform = [scheduler.child, router.child, api.child];
    const results: Record<string, Result> = {
      ...(await compare(seconds, concurrency, rounds, {
        "echo GetFormation": { call: read(viaEcho), servers: [echo.child] },
        "api  GetFormation": { call: read(viaApi), servers: platform },
        "api  GetFormation, own app": { call: readOwn(viaApi), servers: platform },
      })),
      ...(await compare(seconds, concurrency, 1, {
        "scheduler GetApp": { call: () => schedulerClient.getApp({ name: APP }), servers: [scheduler.child] },
        "scheduler GetFormation": { call: () => schedulerClient.getFormation({ app: APP }), servers: [scheduler.child] },
        "router ListRoutes": { call: () => routerClient.listRoutes({ app: APP }), servers: [router.child] },
        "scheduler UpdateFormation": {
          call: () => schedulerClient.updateFormation({ app: APP, changes: [{ processType: "web", replicas: 1 }] }),
          servers: [scheduler.child],
        },
      })),
      ...(await compare(seconds, concurrency, rounds, {
        "echo Scale": { call: scale(viaEcho), servers: [echo.child] },
        "api  Scale": { call: scale(viaApi), servers: platform },
      })),
    };
    console.log(`${"".padEnd(26)} ${"req/s".padStart(7)}   ${"p50 ms".padStart(7)}   ${"p99 ms".padStart(7)}   servers' CPU ms/call`);
    for (const [name, r] of Object.entries(results)) {
      console.log(
        `${name.padEnd(26)} ${r.rate.toFixed(0).padStart(7)}   ${r.p50.toFixed(2).padStart(7)}   ${r.p99.toFixed(2).padStart(7)}   ${r.cpuMsPerCall.toFixed(3).padStart(7)}`,
      );
    }
    const ratio = (a: string, b: string) => (results[a]!.rate / results[b]!.rate).toFixed(2);
    const cpuRatio = (a: string, b: string) => (results[a]!.cpuMsPerCall / results[b]!.cpuMsPerCall).toFixed(1);
    console.log(
      `read  (GetFormation) api/echo throughput ratio: ${ratio("api  GetFormation", "echo GetFormation")}  (target >= 0.8); CPU per call: ${cpuRatio("api  GetFormation", "echo GetFormation")}x the echo's`,
    );
    console.log(
      `read, each caller its own app:  throughput ratio: ${ratio("api  GetFormation, own app", "echo GetFormation")}  (target >= 0.8); CPU per call: ${cpuRatio("api  GetFormation, own app", "echo GetFormation")}x`,
    );
    console.log(`write (Scale)        api/echo throughput ratio: ${ratio("api  Scale", "echo Scale")}; CPU per call: ${cpuRatio("api  Scale", "echo Scale")}x`);
  } finally {
    await Promise.all(children.map((child) => stopRole(child)));
    rmSync(dataDir, { recursive: true, force: true });
    await database?.drop();
  }
}

const [role, ...args] = process.argv.slice(2);
// Every role tells the load generator how much CPU it has used, so that a run's cost per call can be
// told apart from what other programs on the machine take.
if (role !== undefined) answerCpuRequests();
if (role === "scheduler") await runScheduler(args[0]!);
else if (role === "router") await runRouter(args[0]!, args[1]!);
else if (role === "api") await runApi(args[0]!, args[1]!, args[2]!);
else if (role === "echo") {
  process.once("SIGTERM", () => process.exit(0));
  await runEcho(args[0]!);
} else await main();
