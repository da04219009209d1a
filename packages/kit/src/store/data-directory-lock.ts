import { readFile, rm, writeFile } from "node:fs/promises";
import { failedPrecondition } from "../errors.js";

const lockedInThisProcess = new Set<string>();

/**
 * Takes an exclusive lock on an embedded database's data directory by creating
 * `lockPath` with this process's id in it, because PGlite itself lets two
 * processes open the same directory and corrupt it. A lock left behind by a
 * process that no longer runs (killed, or this container's previous life) is
 * taken over. Resolves to the function that releases the lock.
 */
export async function lockDataDirectory(lockPath: string): Promise<() => Promise<void>> {
  if (lockedInThisProcess.has(lockPath)) {
    throw failedPrecondition(`${lockPath} is already held by this process: open each database once`);
  }
  // Reserved before the first await, so a second open in this process cannot mistake our file for a stale one.
  lockedInThisProcess.add(lockPath);
  try {
    if (!(await createLockFile(lockPath))) await takeOverStaleLock(lockPath);
  } catch (error) {
    lockedInThisProcess.delete(lockPath);
    throw error;
  }
  return async () => {
    lockedInThisProcess.delete(lockPath);
    await rm(lockPath, { force: true });
  };
}

async function takeOverStaleLock(lockPath: string): Promise<void> {
  const owner = await lockOwner(lockPath);
  if (owner !== undefined && owner !== process.pid && isRunning(owner)) {
    throw failedPrecondition(`${lockPath} is held by running process ${owner}`);
  }
  await rm(lockPath, { force: true });
  if (!(await createLockFile(lockPath))) {
    throw failedPrecondition(`${lockPath} was taken by another process starting at the same time`);
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

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
