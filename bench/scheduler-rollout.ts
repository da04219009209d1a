/**
 * Scheduler benchmark: the rollout overhead per replica step beyond the
 * app's own readiness time, and the read latency of the formation view.
 *
 *   npx tsx bench/scheduler-rollout.ts [replicas, default 4] [rollouts, default 3] [formation reads, default 2000]
 *
 * The app is the demo's web process with a 300 ms boot delay. Its own
 * readiness time is measured first, outside the scheduler: spawn it and
 * poll its health path every 2 ms until it answers. Then a real scheduler
 * (PostgreSQL at DATABASE_URL, else the embedded PostgreSQL) rolls the type out
 * with the default surge (one replica at a time for 4 replicas) and default
 * health settings; every rolling restart is timed from the RPC to its
 * ROLLOUT_SUCCEEDED step. Overhead per step = rollout time / replicas - own
 * readiness. Seed 002's orchestrator spends a 5 s loop tick per replica.
 *
 * The rollouts run once per local runtime in the same run: plain processes,
 * then runc containers (where runc and root are available), against the
 * same readiness baseline, so the price of isolation is the difference.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create as createTar } from "tar";
import { createInternalClient, freePort, silentLogger } from "@berth/kit";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { readSchedulerConfig, removeHostNetwork, runcUsable, startScheduler } from "@berth/scheduler";

const DEMO_DIR = resolve(import.meta.dirname, "../examples/demo");
const TOKEN = "scheduler-bench-internal-token";
const BOOT_DELAY_MS = 300;
const BENCH_SUBNET = "10.87.0.0/16";
const replicas = Number(process.argv[2] ?? 4);
const rollouts = Number(process.argv[3] ?? 3);
const reads = Number(process.argv[4] ?? 2000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function healthy(port: number): Promise<boolean> {
  return new Promise((done) => {
    http
      .get({ host: "127.0.0.1", port, path: "/health", agent: false }, (response) => {
        response.resume();
        done(response.statusCode === 200);
      })
      .on("error", () => done(false));
  });
}

/** The app's own readiness: from spawn to the first healthy answer, polled every 2 ms. */
async function ownReadinessMs(): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, ["web.js"], {
    cwd: DEMO_DIR,
    env: { PATH: process.env.PATH, PORT: String(port), BOOT_DELAY_MS: String(BOOT_DELAY_MS) },
    stdio: "ignore",
  });
  while (!(await healthy(port))) await new Promise((r) => setTimeout(r, 2));
  const elapsed = performance.now() - started;
  child.kill("SIGKILL");
  return elapsed;
}

/** Deploys the demo's web process on `runtime` and times rolling restarts; prints the step overhead beyond `readiness`. */
async function measure(runtime: "process" | "runc", readiness: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-bench-scheduler-"));
  const schema = `scheduler_bench_${process.pid}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    BERTH_DATA_DIR: dataDir,
    BERTH_SCHEDULER_PORT: "0",
    BERTH_SCHEDULER_SCHEMA: schema,
    BERTH_INTERNAL_TOKEN: TOKEN,
    BERTH_LOCAL_RUNTIME: runtime,
    // Its own subnet (and so its own bridge and nft table), apart from a platform running on the default one.
    BERTH_LOCAL_SUBNET: BENCH_SUBNET,
  };
  if (process.env.DATABASE_URL) env.DATABASE_URL = process.env.DATABASE_URL;
  const scheduler = await startScheduler(readSchedulerConfig(env), { logger: silentLogger });
  const client = createInternalClient(SchedulerService, { baseUrl: scheduler.url, token: TOKEN, timeoutMs: 120_000 });
  try {
    await client.createApp({ team: "bench", name: "bench" });
    await client.updateConfig({ app: "bench", set: { BOOT_DELAY_MS: String(BOOT_DELAY_MS) } });
    const chunks: Buffer[] = [];
    for await (const chunk of createTar({ gzip: true, cwd: DEMO_DIR, portable: true }, ["."]) as AsyncIterable<Buffer>) chunks.push(chunk);
    const archive = Buffer.concat(chunks);
    const { uploadId, maxChunkBytes } = await client.beginSourceUpload({
      app: "bench",
      sizeBytes: BigInt(archive.length),
      sha256: createHash("sha256").update(archive).digest("hex"),
    });
    for (let offset = 0; offset < archive.length; offset += maxChunkBytes) {
      await client.uploadSourceChunk({ uploadId, offset: BigInt(offset), data: archive.subarray(offset, offset + maxChunkBytes) });
    }
    await client.updateFormation({ app: "bench", changes: [{ processType: "web", health: { path: "/health" } }] });
    const follow = async (rolloutId: string) => {
      let state = RolloutState.UNSPECIFIED;
      for await (const step of client.watchRollout({ app: "bench", rolloutId })) {
        state = step.rollout!.state;
        if (step.event!.kind === RolloutEventKind.ROLLOUT_SUCCEEDED) return state;
      }
      return state;
    };
    const first = await client.createRelease({
      app: "bench",
      artifact: { source: { case: "sourceUploadId", value: uploadId } },
      procfile: "web: node web.js\n",
    });
    if ((await follow(first.rollout!.id)) !== RolloutState.SUCCEEDED) throw new Error("the first deploy failed");
    await client.updateFormation({ app: "bench", changes: [{ processType: "web", replicas }] });
    for (;;) {
      const { processes } = await client.getFormation({ app: "bench" });
      if (processes[0]!.readyReplicas === replicas) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    const perStep: number[] = [];
    for (let i = 0; i < rollouts; i += 1) {
      const started = performance.now();
      const { rollout } = await client.restartProcess({ app: "bench", processType: "web" });
      if ((await follow(rollout!.id)) !== RolloutState.SUCCEEDED) throw new Error("a rolling restart failed");
      perStep.push((performance.now() - started) / replicas);
    }

    const latencies: number[] = [];
    for (let i = 0; i < reads; i += 1) {
      const started = performance.now();
      await client.getFormation({ app: "bench" });
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);

    const step = median(perStep);
    console.log(`[${runtime}] rollout time per replica step: ${step.toFixed(0)} ms (each run: ${perStep.map((v) => v.toFixed(0)).join(", ")})`);
    console.log(`[${runtime}] rollout overhead per replica step beyond readiness: ${(step - readiness).toFixed(0)} ms (target <= 100 ms; seed 002: 5000 ms)`);
    console.log(
      `[${runtime}] formation view (GetFormation) over gRPC, ${reads} sequential reads: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`,
    );
  } finally {
    await scheduler.drain(1000);
    if (runtime === "runc") await removeHostNetwork(BENCH_SUBNET);
    rmSync(dataDir, { recursive: true, force: true });
    if (process.env.DATABASE_URL) {
      const pg = (await import("pg")).default;
      const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await db.connect();
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.end();
    }
  }
}

async function main(): Promise<void> {
  const own: number[] = [];
  for (let i = 0; i < 5; i += 1) own.push(await ownReadinessMs());
  const readiness = median(own);
  console.log(`store: ${process.env.DATABASE_URL ? "postgres" : "embedded postgres"}; ${replicas} replicas, ${rollouts} rolling restarts, surge 1`);
  console.log(`app's own readiness (spawn to first healthy answer): ${readiness.toFixed(0)} ms`);
  await measure("process", readiness);
  const runc = await runcUsable();
  if (runc.usable) await measure("runc", readiness);
  else console.log(`[runc] not measured: ${runc.reason}`);
}

await main();
