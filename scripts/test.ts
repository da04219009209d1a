// `npm test`: checks the programs the tests drive are installed (installing
// them as root on Debian), starts a private PostgreSQL (the embedded one) and
// Redis for the run unless BERTH_TEST_DATABASE_URL / BERTH_TEST_REDIS_URL name
// existing ones, then runs the type check, the lints and ava (arguments after
// `npm test --` go to ava), and stops what it started.
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort, useEmbeddedCluster } from "@berth/kit";
import type { ClusterLease } from "@berth/kit";

/** Programs the tests run, and the Debian package of each. */
const requiredPrograms: Record<string, string> = {
  turnserver: "coturn",
  turnutils_uclient: "coturn",
  pebble: "pebble",
  nginx: "nginx-light",
  runc: "runc",
  nft: "nftables",
  chromium: "chromium",
  "redis-server": "redis-server",
};

const cleanups: (() => Promise<unknown>)[] = [];

function onPath(program: string): boolean {
  // /usr/sbin is not on every user's PATH, but nginx and nft live there.
  const path = `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/local/sbin`;
  return spawnSync("sh", ["-c", `command -v "$0" >/dev/null`, program], { env: { ...process.env, PATH: path } }).status === 0;
}

function installMissingPrograms(): void {
  const packages = [
    ...new Set(
      Object.entries(requiredPrograms)
        .filter(([program]) => !onPath(program))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (packages.length === 0) return;
  const command = `apt-get install -y ${packages.join(" ")}`;
  const canInstall = process.getuid?.() === 0 && onPath("apt-get");
  if (!canInstall) {
    console.error(`npm test needs packages that are not installed: ${packages.join(", ")}\ninstall them with: sudo ${command}`);
    process.exit(1);
  }
  console.error(`installing: ${packages.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let result = spawnSync("apt-get", ["install", "-y", "-qq", ...packages], { stdio: "inherit", env });
  if (result.status !== 0) {
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    result = spawnSync("apt-get", ["install", "-y", "-qq", ...packages], { stdio: "inherit", env });
  }
  if (result.status !== 0) {
    console.error(`could not install ${packages.join(", ")}: run ${command} and try again`);
    process.exit(1);
  }
}

async function temporaryDirectory(prefix: string): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** The embedded cluster in a temporary directory, with a database `test`. */
async function startPostgres(): Promise<string> {
  const dataDir = await temporaryDirectory("berth-test-postgres-");
  const lease: ClusterLease = await useEmbeddedCluster(dataDir, undefined);
  cleanups.push(() => lease.release());
  const { cluster } = lease;
  const client = new pg.Client(cluster);
  await client.connect();
  await client.query("CREATE DATABASE test");
  await client.end();
  const url = new URL(`postgres://${cluster.host}:${cluster.port}/test`);
  url.username = cluster.user;
  url.password = cluster.password;
  return url.toString();
}

async function redisAnswers(port: number): Promise<boolean> {
  const socket = connect(port, "127.0.0.1");
  try {
    await once(socket, "connect");
    socket.write("PING\r\n");
    const [reply] = await once(socket, "data");
    return String(reply).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** Debian's redis-server on a free port, in memory only. */
async function startRedis(): Promise<string> {
  const directory = await temporaryDirectory("berth-test-redis-");
  const port = await freePort();
  const server: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  cleanups.push(async () => {
    if (server.exitCode !== null) return;
    server.kill("SIGTERM");
    await once(server, "exit");
  });
  for (let attempt = 0; attempt < 100; attempt++) {
    if (server.exitCode !== null) throw new Error(`redis-server exited with code ${server.exitCode}`);
    if (await redisAnswers(port)) return `redis://127.0.0.1:${port}`;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("redis-server did not answer within 10 s");
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(command, args, { stdio: "inherit", env });
  return once(child, "exit").then(([code, signal]) => (code ?? (signal ? 1 : 0)) as number);
}

async function main(): Promise<number> {
  installMissingPrograms();
  const env = { ...process.env };
  const [databaseUrl, redisUrl] = await Promise.all([env.BERTH_TEST_DATABASE_URL ?? startPostgres(), env.BERTH_TEST_REDIS_URL ?? startRedis()]);
  env.BERTH_TEST_DATABASE_URL = databaseUrl;
  env.BERTH_TEST_REDIS_URL = redisUrl;
  const scripts = JSON.parse((await import("node:fs")).readFileSync("package.json", "utf8")).scripts as Record<string, string>;
  const checks = ["typecheck", "lint", "lint:proto"].filter((name) => name in scripts);
  for (const check of checks) {
    const code = await run("npm", ["run", "--silent", check], env);
    if (code !== 0) {
      console.error(`npm run ${check} failed`);
      return code;
    }
  }
  return run("npx", ["ava", ...process.argv.slice(2)], env);
}

// Ctrl-C reaches ava and redis-server too; this process stays to stop what it started.
process.on("SIGINT", () => {});
let status = 1;
try {
  status = await main();
} catch (error) {
  console.error(error);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => console.error("cleanup failed:", error));
}
process.exit(status);
