import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { failedPrecondition } from "../errors.js";
import { freePort } from "../free-port.js";
import type { StoreLogger } from "./database.js";
import { isRunning, waitForLockFile } from "./lock-file.js";
import { postgresBinaries, runAs, serverUser } from "./postgres-binaries.js";
import type { PostgresBinaries, ServerUser } from "./postgres-binaries.js";

/** How to reach the embedded cluster: a superuser on loopback with the generated password. */
export interface EmbeddedCluster {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

/** One user's hold on the cluster; the last release in the machine stops it. */
export interface ClusterLease {
  readonly cluster: EmbeddedCluster;
  release(): Promise<void>;
}

interface RunningCluster {
  cluster: EmbeddedCluster;
  pgdata: string;
  dataDir: string;
  user: ServerUser;
  binaries: PostgresBinaries;
  /**
   * A connection held while this process uses the cluster, opened before the
   * start lock is released, so that another process deciding whether it is
   * the last user always sees this one.
   */
  presence: pg.Client;
}

const host = "127.0.0.1";
const superuser = "postgres";
// Another process may be running initdb (about a second, longer on a loaded machine).
const startLockTimeoutMs = 120_000;
// After a kill -9 of the postmaster, its children leave the shared memory only once they notice.
const transientStartFailureMs = 20_000;
const transientStartFailure = /shared memory block|could not bind|Address already in use|lock file .* already exists/i;

/** The cluster's files inside a berth data directory. */
export function clusterPaths(dataDir: string) {
  return {
    pgdata: join(dataDir, "postgres"),
    password: join(dataDir, "postgres-password"),
    log: join(dataDir, "postgres.log"),
    startLock: join(dataDir, "postgres-start.lock"),
  };
}

/**
 * Pool connections of this process carry this suffix in application_name, so
 * that the last user here can tell its own lingering sessions from another
 * process's.
 */
export const applicationNameSuffix = ` (pid ${process.pid})`;

interface Shared {
  users: number;
  ready: Promise<RunningCluster>;
}

const sharedInThisProcess = new Map<string, Shared>();
const stoppingInThisProcess = new Map<string, Promise<void>>();

/**
 * Uses the embedded PostgreSQL cluster of `dataDir`: attaches to it when
 * another process (or this one) already runs it, else starts it, first
 * creating it when the directory has none. Every service of one data
 * directory shares the cluster, each in its own schema. When the last user
 * on the machine releases it, the cluster stops; if another process still has
 * connections, it is left running for them.
 */
export async function useEmbeddedCluster(dataDir: string, logger: StoreLogger | undefined): Promise<ClusterLease> {
  await stoppingInThisProcess.get(dataDir);
  let shared = sharedInThisProcess.get(dataDir);
  if (shared === undefined) {
    const entry: Shared = { users: 0, ready: findOrStartCluster(dataDir, logger) };
    entry.ready.catch(() => {
      if (sharedInThisProcess.get(dataDir) === entry) sharedInThisProcess.delete(dataDir);
    });
    sharedInThisProcess.set(dataDir, entry);
    shared = entry;
  }
  const entry = shared;
  entry.users += 1;
  let running: RunningCluster;
  try {
    running = await entry.ready;
  } catch (error) {
    entry.users -= 1;
    throw error;
  }
  let released = false;
  return {
    cluster: running.cluster,
    async release() {
      if (released) return;
      released = true;
      entry.users -= 1;
      if (entry.users > 0) return;
      sharedInThisProcess.delete(dataDir);
      const stop = stopUnlessShared(running, logger).finally(() => stoppingInThisProcess.delete(dataDir));
      stoppingInThisProcess.set(dataDir, stop);
      await stop;
    },
  };
}

async function findOrStartCluster(dataDir: string, logger: StoreLogger | undefined): Promise<RunningCluster> {
  const paths = clusterPaths(dataDir);
  await mkdir(dataDir, { recursive: true });
  // One process at a time creates or starts the cluster; the others then find it running.
  const unlock = await waitForLockFile(paths.startLock, startLockTimeoutMs);
  try {
    const startedAt = performance.now();
    const [binaries, user] = await Promise.all([postgresBinaries(), serverUser(logger)]);
    await checkServerUserReaches(user, dataDir, logger);
    const created = await createClusterIfMissing(dataDir, user, binaries);
    const password = await readPassword(dataDir);
    let port = await runningServerPort(paths.pgdata);
    const attached = port !== undefined;
    port ??= await startServer(dataDir, user, binaries);
    const cluster = { host, port, user: superuser, password, database: "postgres" };
    const presence = new pg.Client({ ...cluster, application_name: `berth${applicationNameSuffix}` });
    presence.on("error", (error) => logger?.warn("embedded postgres connection lost", { directory: paths.pgdata, error }));
    await presence.connect();
    logger?.info(attached ? "embedded postgres found running" : "embedded postgres started", {
      directory: paths.pgdata,
      port,
      created,
      milliseconds: Math.round(performance.now() - startedAt),
    });
    return { cluster, pgdata: paths.pgdata, dataDir, user, binaries, presence };
  } finally {
    await unlock();
  }
}

/**
 * The server's user must be able to enter the data directory. A directory of
 * root's that it cannot enter (mkdtemp makes them 0700) is opened to the
 * server's group alone, for search only; directories above it are the
 * operator's to open.
 */
async function checkServerUserReaches(user: ServerUser, dataDir: string, logger: StoreLogger | undefined): Promise<void> {
  if (user.uid === undefined || user.gid === undefined) return;
  if (await serverUserCanEnter(user, dataDir)) return;
  const { uid, mode } = await stat(dataDir);
  if (uid === process.getuid?.()) {
    await chown(dataDir, uid, user.gid);
    await chmod(dataDir, (mode & 0o7777 & ~0o060) | 0o010);
    logger?.info("let the postgres group enter the data directory (search only) for the embedded PostgreSQL", { dataDir });
    if (await serverUserCanEnter(user, dataDir)) return;
  }
  throw failedPrecondition(
    `the embedded PostgreSQL runs as the user postgres (it refuses root), and postgres cannot reach ${dataDir}: ` +
      "let it search every directory above it (chmod o+x), choose another BERTH_DATA_DIR (for example under /var/lib), or set DATABASE_URL",
  );
}

async function serverUserCanEnter(user: ServerUser, dataDir: string): Promise<boolean> {
  return runAs(user, "test", ["-x", dataDir], "/").then(
    () => true,
    () => false,
  );
}

/**
 * Runs initdb in a side directory and moves it into place only once it is
 * complete (with its password file written first), so that a first start
 * killed half-way leaves a directory the next start recreates, never one that
 * holds a half-made cluster. Returns whether it created the cluster.
 */
async function createClusterIfMissing(dataDir: string, user: ServerUser, binaries: PostgresBinaries): Promise<boolean> {
  const paths = clusterPaths(dataDir);
  const entries = await readdir(paths.pgdata).catch((error: NodeJS.ErrnoException): string[] => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  if (entries.includes("PG_VERSION")) return false;
  if (entries.length > 0) {
    throw failedPrecondition(`${paths.pgdata} is not empty and holds no PostgreSQL cluster (no PG_VERSION): move it away`);
  }
  const staging = `${paths.pgdata}.initializing`;
  const passwordForInitdb = `${staging}.password`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o700 });
  const password = randomBytes(24).toString("base64url");
  try {
    await writeFile(passwordForInitdb, `${password}\n`, { mode: 0o600 });
    await ownedByServer(user, staging, passwordForInitdb);
    await runAs(
      user,
      binaries.initdb,
      ["-D", staging, "-U", superuser, `--pwfile=${passwordForInitdb}`, "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-instructions"],
      dataDir,
    );
  } finally {
    await rm(passwordForInitdb, { force: true });
  }
  await writeFile(`${paths.password}.new`, `${password}\n`, { mode: 0o600 });
  await rename(`${paths.password}.new`, paths.password);
  // rename(2) also replaces an empty directory standing in its place.
  await rename(staging, paths.pgdata);
  return true;
}

async function ownedByServer(user: ServerUser, ...paths: string[]): Promise<void> {
  if (user.uid === undefined || user.gid === undefined) return;
  for (const path of paths) await chown(path, user.uid, user.gid);
}

async function readPassword(dataDir: string): Promise<string> {
  const paths = clusterPaths(dataDir);
  try {
    return (await readFile(paths.password, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    throw failedPrecondition(`${paths.pgdata} holds a cluster but its password file ${paths.password} is missing`);
  }
}

/**
 * The port of the server running on `pgdata`, from its postmaster.pid, or
 * undefined when none runs. A postmaster.pid left by a killed server is left
 * for PostgreSQL to replace, unless its process id now belongs to another
 * program, which PostgreSQL would take for a live server.
 */
async function runningServerPort(pgdata: string): Promise<number | undefined> {
  const pidFile = join(pgdata, "postmaster.pid");
  const deadline = Date.now() + startLockTimeoutMs;
  for (;;) {
    let lines: string[];
    try {
      lines = (await readFile(pidFile, "utf8")).split("\n");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
    const pid = Number(lines[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || !isRunning(pid)) return undefined;
    if (!(await looksLikePostgres(pid))) {
      await rm(pidFile, { force: true });
      return undefined;
    }
    const status = lines[7]?.trim();
    if (status === "ready") return Number(lines[3]);
    // Starting or stopping (another process's last user is stopping it): wait for either end.
    if (Date.now() > deadline) throw failedPrecondition(`the PostgreSQL server ${pid} on ${pgdata} stays "${status}"`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function looksLikePostgres(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/comm`, "utf8")).trim().startsWith("postgres");
  } catch {
    // No /proc (not Linux), or it exited meanwhile: let PostgreSQL judge.
    return true;
  }
}

/**
 * Loopback only, no Unix socket; and, to keep a small idle footprint, no I/O
 * worker processes (io_method=sync, PostgreSQL 17's way) and no logical
 * replication launcher, which berth does not use. Connections: each service
 * keeps a pool of up to 10 and a test run puts several platforms on one
 * cluster, which PostgreSQL's default of 100 does not hold (53300).
 */
const serverSettings = `-c listen_addresses=${host} -c unix_socket_directories='' -c io_method=sync -c max_logical_replication_workers=0 -c max_connections=400`;

/** Starts the server detached from this process (pg_ctl), on a free loopback port; resolves to the port. */
async function startServer(dataDir: string, user: ServerUser, binaries: PostgresBinaries): Promise<number> {
  const paths = clusterPaths(dataDir);
  await writeFile(paths.log, "", { flag: "a" });
  await ownedByServer(user, paths.log);
  const deadline = Date.now() + transientStartFailureMs;
  for (;;) {
    const port = await freePort(host);
    try {
      await runAs(user, binaries.pg_ctl, ["start", "-D", paths.pgdata, "-w", "-t", "60", "-l", paths.log, "-o", `-p ${port} ${serverSettings}`], dataDir);
      return port;
    } catch (error) {
      const log = await logTail(paths.log);
      if (transientStartFailure.test(log) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        continue;
      }
      throw failedPrecondition(`the embedded PostgreSQL did not start: ${(error as Error).message}\n${paths.log} ends with:\n${log}`);
    }
  }
}

async function logTail(path: string): Promise<string> {
  const text = await readFile(path, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-8).join("\n");
}

/**
 * Stops the cluster unless a session of another process still uses it (a
 * service started on its own, or a psql): then it stays up for them, and
 * the last of them stops it.
 */
async function stopUnlessShared(running: RunningCluster, logger: StoreLogger | undefined): Promise<void> {
  await running.presence.end().catch(() => {});
  // Under the start lock: no other process can attach between the count and the stop.
  const unlock = await waitForLockFile(clusterPaths(running.dataDir).startLock, startLockTimeoutMs);
  try {
    await stopIfLastUser(running, logger);
  } finally {
    await unlock();
  }
}

async function stopIfLastUser(running: RunningCluster, logger: StoreLogger | undefined): Promise<void> {
  const client = new pg.Client({ ...running.cluster, application_name: `berth stop check${applicationNameSuffix}` });
  let others: number;
  try {
    await client.connect();
    const { rows } = await client.query<{ others: number }>(
      `SELECT count(*)::int AS others FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name NOT LIKE $1`,
      [`%${applicationNameSuffix}`],
    );
    others = rows[0]?.others ?? 0;
  } catch (error) {
    logger?.warn("embedded postgres did not answer at stop; leaving it", { directory: running.pgdata, error });
    return;
  } finally {
    await client.end().catch(() => {});
  }
  if (others > 0) {
    logger?.info("embedded postgres left running for the other processes using it", { directory: running.pgdata, connections: others });
    return;
  }
  await runAs(running.user, running.binaries.pg_ctl, ["stop", "-D", running.pgdata, "-m", "fast", "-w", "-t", "60"], running.dataDir);
  logger?.info("embedded postgres stopped", { directory: running.pgdata });
}
