/**
 * CPU time of a benchmark's server processes, asked over their IPC channel:
 * the load generator compares CPU per call beside calls per second.
 */
import type { ChildProcess } from "node:child_process";

/** In a server child: answers every "cpu" message with this process's CPU usage. */
export function answerCpuRequests(): void {
  process.on("message", (message) => message === "cpu" && process.send?.({ cpu: process.cpuUsage() }));
}

/** The CPU time (user + system, ms) a child answering `answerCpuRequests` has used so far. */
export function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      const cpu = (message as { cpu?: NodeJS.CpuUsage }).cpu;
      if (!cpu) return;
      child.off("message", onMessage);
      resolve((cpu.user + cpu.system) / 1000);
    };
    child.on("message", onMessage);
    child.send("cpu");
  });
}

/** The CPU time (ms) all of `children` have used so far. */
export const cpuOfAll = async (children: ChildProcess[]) => (await Promise.all(children.map(cpuOf))).reduce((a, b) => a + b, 0);
