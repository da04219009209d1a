import { readdir, readFile } from "node:fs/promises";

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

interface ProcStat {
  state: string;
  processGroup: number;
  cpuTicks: number;
  startTime: number;
}

// Fields after the parenthesised command name start at field 3 (state); see proc(5).
function parseStat(text: string): ProcStat | undefined {
  const end = text.lastIndexOf(")");
  if (end < 0) return undefined;
  const fields = text.slice(end + 2).split(" ");
  const field = (n: number) => Number(fields[n - 3]);
  return { state: fields[0] ?? "", processGroup: field(5), cpuTicks: field(14) + field(15), startTime: field(22) };
}

async function readStat(pid: number | string): Promise<ProcStat | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The start time of a process (ticks since boot), to tell it from a later process with the same pid. */
export async function processStartTime(pid: number): Promise<number | undefined> {
  return (await readStat(pid))?.startTime;
}

/** True when `pid` runs and is the process that started at `startTime` (not a zombie, not a reused pid). */
export async function isSameProcessAlive(pid: number, startTime: number): Promise<boolean> {
  const stat = await readStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== "Z" && stat.state !== "X";
}

/**
 * True while the process group that `leader` (started at `startTime`) leads
 * has a live member. The leader may be gone while the rest lives on: a
 * `sh -c` that SIGTERM ended, around an app that ignores SIGTERM. While any
 * member lives the kernel keeps the group's number from being reused as a
 * pid, so a live process at that pid that started at another time means the
 * group is gone.
 */
export async function isProcessGroupOfAlive(leader: number, startTime: number): Promise<boolean> {
  const stat = await readStat(leader);
  if (stat !== undefined && stat.startTime !== startTime) return false;
  if (stat !== undefined && stat.state !== "Z" && stat.state !== "X") return true;
  return isProcessGroupAlive(leader);
}

/** True while any live process belongs to the process group. */
export async function isProcessGroupAlive(processGroup: number): Promise<boolean> {
  const entries = await readdir("/proc");
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readStat(pid);
    if (stat?.processGroup === processGroup && stat.state !== "Z" && stat.state !== "X") return true;
  }
  return false;
}

/** Resolves once no live process belongs to the group, or false when `timeoutMs` passed first. */
export async function waitForProcessGroupExit(processGroup: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isProcessGroupAlive(processGroup)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** CPU time used so far by every process of a process group, in milliseconds. */
export async function processGroupCpuMs(processGroup: number): Promise<number> {
  let ticks = 0;
  const entries = await readdir("/proc");
  await Promise.all(
    entries
      .filter((name) => /^\d+$/.test(name))
      .map(async (pid) => {
        const stat = await readStat(pid);
        if (stat?.processGroup === processGroup) ticks += stat.cpuTicks;
      }),
  );
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Sends `signal` to a whole process group; false when the group is gone. */
export function signalProcessGroup(processGroup: number, signal: NodeJS.Signals): boolean {
  // Group 0 would be our own group and 1 is init: never signal either.
  if (!Number.isSafeInteger(processGroup) || processGroup <= 1) return false;
  try {
    process.kill(-processGroup, signal);
    return true;
  } catch {
    return false;
  }
}
