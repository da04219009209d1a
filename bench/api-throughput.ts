/**
 * Public API benchmark: requests/s, p50 and p99 of a read (GetFormation, the
 * `pods` view) and a write (Scale) through the API, against a bare Connect
 * echo of the same answer served by the same kit, in one run; then the ratios.
 *
 *   npx tsx bench/api-throughput.ts [seconds per run, default 5] [concurrent calls, default 16]
 *
 * Each party runs in its own process (this file, in different roles): the
 * scheduler and router peers, the API, the echo, and the load generator, so
 * that they compete for the CPU as they would on one host. The API keeps its
 * tokens in PostgreSQL when DATABASE_URL is set, else in an embedded PGlite.
 * Until the scheduler package exports startScheduler, the peers are the
 * in-memory stand-ins of the API's tests: the numbers are the API's own cost.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { routingClassOf, serve, silentLogger, startServer } from "@berth/kit";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { AppService } from "@berth/proto/api/v1/apps";
import { ProcessFormationSchema } from "@berth/proto/type/v1/process";
import { startApi } from "../packages/api/src/index.js";
import { createRouterStandIn, createSchedulerStandIn, STAND_IN_TYPES } from "../packages/api/test/support/peer-stand-ins.js";

const self = fileURLToPath(import.meta.url);
const INTERNAL_TOKEN = "internal-token-for-the-api-bench";
const APP = "bench-app";

type Ready = Record<string, string>;

function startRole(role: string, args: string[] = []): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = spawn(process.execPath, ["--import", "tsx", self, role, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (ready) => resolve({ child, ready: ready as Ready }));
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code} before it was ready`)));
  });
}

// ---- role: peers (scheduler and router) ----

async function runPeers(): Promise<void> {
  const scheduler = createSchedulerStandIn();
  const router = createRouterStandIn();
  router.knowApp(APP);
  const options = { port: 0, logger: silentLogger, internalToken: INTERNAL_TOKEN };
  const schedulerServer = await startServer({ ...options, name: "scheduler", services: [scheduler.registration] });
  const routerServer = await startServer({ ...options, name: "router", services: [router.registration] });
  process.send!({ scheduler: schedulerServer.url, router: routerServer.url });
}

// ---- role: api ----

async function runApi(schedulerUrl: string, routerUrl: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-api-bench-"));
  process.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));
  let adminToken = "";
  const api = await startApi(
    {
      host: "127.0.0.1",
      port: 0,
      databaseUrl: process.env["DATABASE_URL"],
      redisUrl: undefined,
      dataDir,
      internalToken: INTERNAL_TOKEN,
      platformDomain: "berth.localhost",
      logLevel: "error",
      peers: { scheduler: schedulerUrl, router: routerUrl, turnAllocator: "http://127.0.0.1:1", netpol: "http://127.0.0.1:1" },
      adminToken: undefined,
      corsOrigins: ["*"],
      callTimeoutMs: 10_000,
    },
    { logger: silentLogger, schema: `api_bench_${process.pid}`, announce: (line) => (adminToken = /(berth_\S+)/.exec(line)?.[1] ?? "") },
  );
  process.send!({ url: api.url, adminToken, backend: process.env["DATABASE_URL"] ? "postgres" : "pglite" });
}

// ---- role: echo ----

async function runEcho(): Promise<void> {
  // The same answer the API gives for the bench app, with no work behind it.
  const processes = STAND_IN_TYPES.map((processType) =>
    create(ProcessFormationSchema, { processType, routingClass: routingClassOf(processType), replicas: 1, size: "standard-1x" }),
  );
  const server = await startServer({
    name: "echo",
    port: 0,
    logger: silentLogger,
    services: [serve(FormationService, { getFormation: () => ({ processes }), scale: () => ({ processes }) })],
  });
  process.send!({ url: server.url });
}

// ---- role: load generator ----

interface Result {
  rps: number;
  p50: number;
  p99: number;
}

async function load(seconds: number, concurrency: number, call: () => Promise<unknown>): Promise<Result> {
  for (let i = 0; i < 200; i++) await call();
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await call();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { rps: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) };
}

function formationClient(url: string, token?: string): Client<typeof FormationService> {
  const bearer: Interceptor = (next) => (request) => {
    if (token) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  return createClient(FormationService, createGrpcTransport({ baseUrl: url, interceptors: [bearer] }));
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const concurrency = Number(process.argv[3] ?? 16);
  const children: ChildProcess[] = [];
  try {
    const peers = await startRole("peers");
    children.push(peers.child);
    const api = await startRole("api", [peers.ready["scheduler"]!, peers.ready["router"]!]);
    children.push(api.child);
    const echo = await startRole("echo");
    children.push(echo.child);

    const adminTransport = createGrpcTransport({
      baseUrl: api.ready["url"]!,
      interceptors: [(next) => (request) => (request.header.set("authorization", `Bearer ${api.ready["adminToken"]}`), next(request))],
    });
    await createClient(TeamService, adminTransport).createTeam({ name: "bench" });
    const { secret } = await createClient(TeamService, adminTransport).createToken({ team: "bench" });
    const teamTransport = createGrpcTransport({
      baseUrl: api.ready["url"]!,
      interceptors: [(next) => (request) => (request.header.set("authorization", `Bearer ${secret}`), next(request))],
    });
    await createClient(AppService, teamTransport).createApp({ name: APP });

    const viaApi = formationClient(api.ready["url"]!, secret);
    const viaEcho = formationClient(echo.ready["url"]!);
    let flip = 0;
    const scale = (client: Client<typeof FormationService>) => () => client.scale({ app: APP, replicas: { web: 1 + (flip++ % 3) } });
    const read = (client: Client<typeof FormationService>) => () => client.getFormation({ app: APP });

    console.log(`api-throughput: ${seconds}s per run, ${concurrency} concurrent gRPC calls, API store on ${api.ready["backend"]}, ${(await import("node:os")).cpus().length} cores`);
    const results: Record<string, Result> = {
      "echo GetFormation": await load(seconds, concurrency, read(viaEcho)),
      "api  GetFormation": await load(seconds, concurrency, read(viaApi)),
      "echo Scale": await load(seconds, concurrency, scale(viaEcho)),
      "api  Scale": await load(seconds, concurrency, scale(viaApi)),
    };
    for (const [name, r] of Object.entries(results)) {
      console.log(`${name.padEnd(18)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms`);
    }
    const ratio = (a: string, b: string) => (results[a]!.rps / results[b]!.rps).toFixed(2);
    console.log(`read  (GetFormation) api/echo throughput ratio: ${ratio("api  GetFormation", "echo GetFormation")}  (target >= 0.5)`);
    console.log(`write (Scale)        api/echo throughput ratio: ${ratio("api  Scale", "echo Scale")}`);
  } finally {
    for (const child of children) child.kill("SIGTERM");
  }
}

const [role, ...args] = process.argv.slice(2);
// Roles end on SIGTERM through exit, so that their exit handlers clean up.
if (role === "peers" || role === "api" || role === "echo") process.once("SIGTERM", () => process.exit(0));
if (role === "peers") await runPeers();
else if (role === "api") await runApi(args[0]!, args[1]!);
else if (role === "echo") await runEcho();
else await main();
