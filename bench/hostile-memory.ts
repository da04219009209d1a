/**
 * Memory of the API and the scheduler under hostile bodies and archives:
 * resident memory (VmRSS) of each process idle, then its peak while each
 * attack runs, sampled every 20 ms. Done when every peak stays within
 * 100 MB of the idle figure.
 *
 *   npx tsx bench/hostile-memory.ts
 *
 * The scheduler and the API run as their own processes (node --import tsx
 * main.ts, as npm start -w would), on a fresh PostgreSQL database
 * (DATABASE_URL, default the local test server) and plain-process replicas.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createGzip } from "node:zlib";
import pg from "pg";
import { Header } from "tar";
import { createInternalClient, freePort } from "@berth/kit";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";

const ROOT = resolve(import.meta.dirname, "..");
const ADMIN_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TOKEN = "hostile-memory-internal-token";
const ADMIN_TOKEN = "hostile-memory-admin-token-0123456789";
const MiB = 1024 * 1024;

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return line ? Number(line[1]) / 1024 : 0;
}

async function startService(service: "scheduler" | "api", env: Record<string, string>, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "packages", service, "src/main.ts")], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${service} exited: ${log}`);
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return child;
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`${service} did not start: ${log}`);
}

/** Posts `body` (chunks, written as the server takes them) and resolves with the answer's status and start of body, or the error that ended it. */
function post(url: string, headers: Record<string, string>, chunks: AsyncIterable<Buffer> | Buffer[]): Promise<string> {
  return new Promise((done) => {
    const request = http.request(url, { method: "POST", headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => done(`${response.statusCode} ${body.slice(0, 100)}`));
    });
    request.on("error", (error) => done(`connection ended: ${error.message}`));
    void (async () => {
      for await (const chunk of chunks) {
        if (request.destroyed) return;
        if (!request.write(chunk)) await new Promise((drained) => request.once("drain", drained).once("close", drained));
      }
      request.end();
    })().catch(() => undefined);
  });
}

async function* repeated(chunk: Buffer, totalBytes: number): AsyncIterable<Buffer> {
  for (let sent = 0; sent < totalBytes; sent += chunk.length) yield chunk;
}

/** gzip of `prefix`, then `zeros` zero bytes, then `suffix`, made streaming (the bench itself stays small). */
async function gzipOf(prefix: Buffer, zeros: number, suffix: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on("data", (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((done) => gzip.on("end", done));
  gzip.write(prefix);
  const block = Buffer.alloc(MiB);
  for (let written = 0; written < zeros; written += MiB) {
    if (!gzip.write(block.subarray(0, Math.min(MiB, zeros - written)))) await new Promise((drained) => gzip.once("drain", drained));
  }
  gzip.end(suffix);
  await ended;
  return Buffer.concat(out);
}

function tarHeader(path: string, size: number): Buffer {
  const header = new Header({ path, type: "File", size, mode: 0o644, mtime: new Date(0) });
  header.encode();
  return header.block!;
}

const database = `berth_bench_${randomBytes(5).toString("hex")}`;
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(`CREATE DATABASE ${database}`);
const dataDir = mkdtempSync(join(tmpdir(), "berth-hostile-memory-"));
const [schedulerPort, apiPort] = [await freePort(), await freePort()];
const common = {
  DATABASE_URL: ADMIN_URL.replace(/\/[^/]*$/, `/${database}`),
  BERTH_DATA_DIR: dataDir,
  BERTH_INTERNAL_TOKEN: TOKEN,
  BERTH_LOG_LEVEL: "error",
  BERTH_LOCAL_RUNTIME: "process",
  BERTH_SCHEDULER_PORT: String(schedulerPort),
  BERTH_SCHEDULER_URL: `http://127.0.0.1:${schedulerPort}`,
  BERTH_API_PORT: String(apiPort),
  BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
  BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN: "true",
};
const children: ChildProcess[] = [];
try {
  const scheduler = await startService("scheduler", common, schedulerPort);
  children.push(scheduler);
  const api = await startService("api", common, apiPort);
  children.push(api);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const schedulerUrl = `http://127.0.0.1:${schedulerPort}`;
  const internal = createInternalClient(SchedulerService, { baseUrl: schedulerUrl, token: TOKEN });
  await internal.createApp({ team: "acme", name: "shop" });

  const upload = async (archive: Buffer) => {
    const sha256 = createHash("sha256").update(archive).digest("hex");
    const { uploadId, maxChunkBytes } = await internal.beginSourceUpload({ app: "shop", sizeBytes: BigInt(archive.length), sha256 });
    try {
      for (let offset = 0; offset < archive.length; offset += maxChunkBytes) {
        await internal.uploadSourceChunk({ uploadId, offset: BigInt(offset), data: archive.subarray(offset, offset + maxChunkBytes) }, { timeoutMs: 600_000 });
      }
      return "accepted";
    } catch (error) {
      return (error as Error).message.slice(0, 120);
    }
  };

  const jsonBomb = await gzipOf(Buffer.from('{"name":"'), 400 * MiB, Buffer.from('"}'));
  const gigabyteFile = await gzipOf(tarHeader("zeros", 1024 * MiB), 1024 * MiB, Buffer.alloc(1024));
  const zeroArchive = await gzipOf(Buffer.alloc(0), 2048 * MiB);
  const idle = { api: rssMb(api.pid!), scheduler: rssMb(scheduler.pid!) };
  console.log(`idle: api ${idle.api.toFixed(0)} MB, scheduler ${idle.scheduler.toFixed(0)} MB`);

  const attacks: [string, () => Promise<string>][] = [
    [
      "API: 300 MB JSON body, no token",
      () => post(`${apiUrl}/berth.api.v1.AppService/CreateApp`, { "content-type": "application/json" }, repeated(Buffer.alloc(MiB, 0x61), 300 * MiB)),
    ],
    [
      `API: ${(jsonBomb.length / 1024).toFixed(0)} KB gzip expanding to 400 MB, no token`,
      () => post(`${apiUrl}/berth.api.v1.AppService/CreateApp`, { "content-type": "application/json", "content-encoding": "gzip" }, [jsonBomb]),
    ],
    [
      "API: the same gzip with an admin token",
      () =>
        post(
          `${apiUrl}/berth.api.v1.AppService/CreateApp`,
          { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${ADMIN_TOKEN}` },
          [jsonBomb],
        ),
    ],
    [
      "scheduler: the same gzip, no internal credential",
      () =>
        post(`${schedulerUrl}/berth.scheduler.v1.SchedulerService/CreateApp`, { "content-type": "application/json", "content-encoding": "gzip" }, [jsonBomb]),
    ],
    [
      "scheduler: the same gzip with the internal credential",
      () =>
        post(
          `${schedulerUrl}/berth.scheduler.v1.SchedulerService/CreateApp`,
          { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${TOKEN}` },
          [jsonBomb],
        ),
    ],
    [`scheduler: ${(gigabyteFile.length / MiB).toFixed(1)} MB archive of a 1 GiB file`, () => upload(gigabyteFile)],
    [`scheduler: ${(zeroArchive.length / MiB).toFixed(1)} MB archive of 2 GiB of zeros`, () => upload(zeroArchive)],
  ];
  let worst = 0;
  for (const [name, attack] of attacks) {
    const peak = { api: 0, scheduler: 0 };
    const sample = () => {
      peak.api = Math.max(peak.api, rssMb(api.pid!));
      peak.scheduler = Math.max(peak.scheduler, rssMb(scheduler.pid!));
    };
    sample();
    const sampler = setInterval(sample, 20);
    const started = performance.now();
    const answer = await attack();
    clearInterval(sampler);
    sample();
    const ms = performance.now() - started;
    worst = Math.max(worst, peak.api - idle.api, peak.scheduler - idle.scheduler);
    console.log(
      `${name}: answered in ${ms.toFixed(0)} ms (${answer.replace(/\s+/g, " ")}); peak api ${peak.api.toFixed(0)} MB (+${(peak.api - idle.api).toFixed(0)}), scheduler ${peak.scheduler.toFixed(0)} MB (+${(peak.scheduler - idle.scheduler).toFixed(0)})`,
    );
  }
  console.log(`largest growth over idle: ${worst.toFixed(0)} MB (limit 100 MB): ${worst <= 100 ? "within" : "OVER"}`);
} finally {
  for (const child of children.reverse()) {
    child.kill("SIGTERM");
    await new Promise((done) => (child.exitCode !== null ? done(undefined) : child.once("exit", done)));
  }
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
  rmSync(dataDir, { recursive: true, force: true });
}
