import { readFileSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { failedPrecondition } from "../errors.js";

const lockedInThisProcess = new Set<string>();

/** What tryLockFile found: the lock taken (and how to release it), or the running process holding it. */
export type LockAttempt = { release: () => Promise<void> } | { heldBy: number };

/**
 * Takes an exclusive lock by creating `lockPath` with this process's id in it.
 * A lock left behind by a process that no longer runs (killed, or this
 * container's previous life) is taken over. Resolves to how to release it, or
 * to the id of the running process that holds it.
 */
export async function tryLockFile(lockPath: string): Promise<LockAttempt> {
  if (lockedInThisProcess.has(lockPath)) return { heldBy: process.pid };
  // Reserved before the first await, so a second lock in this process cannot mistake our file for a stale one.
  lockedInThisProcess.add(lockPath);
  try {
    if (!(await createLockFile(lockPath))) {
      const owner = await lockOwner(lockPath);
      if (owner !== undefined && owner !== process.pid && isRunning(owner)) {
        lockedInThisProcess.delete(lockPath);
        return { heldBy: owner };
      }
      await rm(lockPath, { force: true });
      if (!(await createLockFile(lockPath))) {
        throw failedPrecondition(`${lockPath} was taken by another process starting at the same time`);
      }
    }
  } catch (error) {
    lockedInThisProcess.delete(lockPath);
    throw error;
  }
  return {
    async release() {
      lockedInThisProcess.delete(lockPath);
      await rm(lockPath, { force: true });
    },
  };
}

/** Like tryLockFile, but waits (up to `timeoutMs`) while another process holds the lock. */
export async function waitForLockFile(lockPath: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const attempt = await tryLockFile(lockPath);
    if ("release" in attempt) return attempt.release;
    if (Date.now() > deadline) {
      throw failedPrecondition(`${lockPath} is still held by running process ${attempt.heldBy} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function createLockFile(lockPath: string): Promise<boolean> {
  try {
    await writeFile(lockPath, `${process.pid}\n`, { flag: "wx" });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

async function lockOwner(lockPath: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(lockPath, "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Whether a process with this id runs (EPERM: it does, but belongs to someone
 * else). A zombie does not: a detached server that exited stays one until
 * init reaps it, which some inits do late.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    // The state follows the parenthesised command name, which may itself hold spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return false;
  }
}
