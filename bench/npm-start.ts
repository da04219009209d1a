/**
 * `npm start` on the embedded PostgreSQL cluster, beside the PGlite it
 * replaced, measured in the same run: for a first start on a fresh data
 * directory and a second start on the same one, the time from `npm start`
 * until the API answers its health check, and the platform's memory (the sum
 * of the RSS of the `npm start` process tree and of the embedded postmaster
 * and its children; the demo app's own replicas are left out) idle, and after
 * a deploy of the demo app.
 *
 *   npx tsx bench/npm-start.ts [rounds, default 1]   (BENCH_NPM_START_PGLITE=0: without PGlite)
 *
 * Also beside the same platform run from its TypeScript sources through tsx
 * (how `npm start` ran before it ran the bundle built at install).
 * PGlite runs from a git worktree of the last commit that had it (found in
 * the history; made under the temporary directory and given its own
 * `npm ci` on first use), or from BERTH_BENCH_PGLITE_CHECKOUT. Targets for
 * the embedded cluster: idle memory at most 300 MB, first start at most 3 s.
 */
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@berth/proto/grpc/health/v1/health";
import { platformEnvironment, removeContainerNetwork } from "../test/support/platform.js";
import { deployDirectory, publicApi } from "../test/support/public-api.js";

const root = resolve(import.meta.dirname, "..");
const demo = join(root, "examples/demo");
const procfile = readFileSync(join(demo, "Procfile"), "utf8");
const ADMIN_TOKEN = "npm-start-bench-admin-token-0123456789";
// Long enough for the pools to close connections idle for 10 s (pg.Pool's default), as an idle platform has.
const IDLE_SETTLE_MS = 12_000;
const rounds = Number(process.argv[2] ?? 1);

interface Figures {
  healthMs: number;
  idleMb: number;
  deployedMb: number;
}

/** The checkout of the last commit whose store was PGlite, ready to `npm start`. */
function pgliteCheckout(): string {
  const configured = process.env.BERTH_BENCH_PGLITE_CHECKOUT;
  if (configured) return configured;
  const git = (...args: string[]) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  const removal = git("log", "-1", "--format=%H", "-S", "@electric-sql/pglite-socket", "--", "packages/kit/package.json");
  const commit = git("rev-parse", `${removal}^`);
  const checkout = join(tmpdir(), `berth-bench-pglite-${commit.slice(0, 12)}`);
  if (!existsSync(checkout)) git("worktree", "add", "--detach", checkout, commit);
  if (!existsSync(join(checkout, "node_modules"))) execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: checkout, stdio: "inherit" });
  return checkout;
}

interface ProcessInfo {
  ppid: number;
  rssKb: number;
  cwd: string;
}

function processTable(): Map<number, ProcessInfo> {
  const table = new Map<number, ProcessInfo>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // another user's process, or gone
      }
      table.set(pid, { ppid: Number(fields[1]), rssKb, cwd });
    } catch {
      // exited while listed
    }
  }
  return table;
}

/** MB of RSS of the trees under `roots`, without the app replicas (which run in the data directory's app folders). */
function platformMemoryMb(roots: number[], dataDir: string): number {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [pid, info] of table) children.set(info.ppid, [...(children.get(info.ppid) ?? []), pid]);
  let totalKb = 0;
  const pending = [...roots];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    const info = table.get(pid);
    if (info === undefined || info.cwd.startsWith(join(dataDir, "apps"))) continue;
    totalKb += info.rssKb;
    pending.push(...(children.get(pid) ?? []));
  }
  return Math.round(totalKb / 1024);
}

function postmasterPid(dataDir: string): number[] {
  try {
    return [Number(readFileSync(join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0])];
  } catch {
    return [];
  }
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  const health = createClient(Health, createGrpcTransport({ baseUrl: url, defaultTimeoutMs: 1000 }));
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited with code ${child.exitCode}`);
    try {
      if ((await health.check({ service: "" })).status === Status.SERVING) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How a variant starts: `npm start` in a checkout, or another npm command in this one. */
interface Variant {
  cwd: string;
  npmArgs: string[];
}

/** One start of `variant` on `dataDir`: its figures, then a clean stop (Ctrl-C to its process group). */
async function measureStart(variant: Variant, dataDir: string, app: string): Promise<Figures> {
  const { env, urls } = await platformEnvironment(dataDir);
  Object.assign(env, { BERTH_ADMIN_TOKEN: ADMIN_TOKEN, BERTH_ROUTER_HTTP_PORT: "0", BERTH_ROUTER_HTTPS_PORT: "0", BERTH_LOG_LEVEL: "warn" });
  const startedAt = performance.now();
  const child = spawn("npm", variant.npmArgs, { cwd: variant.cwd, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"], detached: true });
  try {
    await waitHealthy(urls.api, child);
    const healthMs = Math.round(performance.now() - startedAt);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    const idleMb = platformMemoryMb([child.pid!, ...postmasterPid(dataDir)], dataDir);
    const admin = publicApi(urls.api, ADMIN_TOKEN);
    if (!(await admin.teams.listTeams({})).teams.some((team) => team.name === "bench")) await admin.teams.createTeam({ name: "bench" });
    const team = publicApi(urls.api, (await admin.teams.createToken({ team: "bench", description: "bench" })).secret);
    if (!(await team.apps.listApps({})).apps.some((existing) => existing.name === app)) await team.apps.createApp({ name: app });
    await deployDirectory(team, app, demo, procfile);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    const deployedMb = platformMemoryMb([child.pid!, ...postmasterPid(dataDir)], dataDir);
    return { healthMs, idleMb, deployedMb };
  } finally {
    process.kill(-child.pid!, "SIGINT");
    await once(child, "exit");
    // A stopped platform leaves its network for the next start to adopt; each start here has a subnet of its own.
    await removeContainerNetwork(env);
  }
}

// `npm start` runs the bundle `npm install` built; "embedded, tsx" is the same platform run from its
// TypeScript sources through tsx, as `npm start` did before. BENCH_NPM_START_PGLITE=0 leaves PGlite out.
const withPglite = process.env.BENCH_NPM_START_PGLITE !== "0";
const variants: Record<string, Variant> = {
  ...(withPglite ? { pglite: { cwd: pgliteCheckout(), npmArgs: ["start"] } } : {}),
  "embedded, tsx": { cwd: root, npmArgs: ["exec", "--", "node", "--import", "tsx", "packages/platform/src/main.ts"] },
  embedded: { cwd: root, npmArgs: ["start"] },
};
const results: Record<string, Figures[]> = {};
const record = (key: string, figures: Figures) => {
  results[key] ??= [];
  results[key].push(figures);
};
for (let round = 0; round < rounds; round++) {
  // Alternating, so that every variant sees the same machine load.
  for (const [name, variant] of Object.entries(variants)) {
    const dataDir = mkdtempSync(join(tmpdir(), "berth-bench-npm-start-"));
    try {
      record(`${name} first start`, await measureStart(variant, dataDir, "shop"));
      record(`${name} second start`, await measureStart(variant, dataDir, "shop"));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(
  `npm-start: ${rounds} round(s), median; ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)}${withPglite ? `; PGlite from ${variants.pglite!.cwd}` : ""}`,
);
console.log("start                      health (ms)   idle RSS (MB)   after deploy RSS (MB)");
for (const [key, figures] of Object.entries(results)) {
  const health = median(figures.map((f) => f.healthMs));
  const idle = median(figures.map((f) => f.idleMb));
  const deployed = median(figures.map((f) => f.deployedMb));
  console.log(`${key.padEnd(26)} ${String(health).padStart(11)}   ${String(idle).padStart(13)}   ${String(deployed).padStart(21)}`);
}
for (const baseline of Object.keys(variants).filter((name) => name !== "embedded")) {
  for (const kind of ["first start", "second start"]) {
    const base = results[`${baseline} ${kind}`]!;
    const embedded = results[`embedded ${kind}`]!;
    const ratio = (pick: (f: Figures) => number) => (median(embedded.map(pick)) / median(base.map(pick))).toFixed(2);
    console.log(
      `embedded / ${baseline}, ${kind}: health ${ratio((f) => f.healthMs)}, idle RSS ${ratio((f) => f.idleMb)}, after deploy ${ratio((f) => f.deployedMb)}`,
    );
  }
}
const firstEmbedded = results["embedded first start"]!;
console.log(
  `targets (embedded): idle <= 300 MB: ${median(firstEmbedded.map((f) => f.idleMb))} MB; first start <= 3000 ms: ${median(firstEmbedded.map((f) => f.healthMs))} ms`,
);
