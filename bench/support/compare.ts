/**
 * Concurrent load against servers, compared in alternating slices: calls/s,
 * latency and the servers' CPU per call (which other programs on the
 * machine do not skew).
 */
import type { ChildProcess } from "node:child_process";
import { cpuOfAll } from "./child-cpu.js";

export interface Result {
  /** Calls per second. */
  rate: number;
  p50: number;
  p99: number;
  /** CPU time per call of the processes that serve it, in ms. */
  cpuMsPerCall: number;
}

export interface Load {
  call: (worker: number) => Promise<unknown>;
  /** The processes whose CPU the call costs. */
  servers: ChildProcess[];
}

interface Sample {
  seconds: number;
  cpuMs: number;
  latencies: number[];
}

async function sample(seconds: number, concurrency: number, { call, servers }: Load): Promise<Sample> {
  const latencies: number[] = [];
  const cpuBefore = await cpuOfAll(servers);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await call(worker);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, cpuMs: (await cpuOfAll(servers)) - cpuBefore, latencies };
}

/**
 * Loads each of `loads` for `seconds` in all, in `rounds` alternating slices, so that whatever else
 * the machine runs meanwhile weighs on each of them alike; a warm-up of 200 calls each first.
 */
export async function compare(seconds: number, concurrency: number, rounds: number, loads: Record<string, Load>): Promise<Record<string, Result>> {
  const samples: Record<string, Sample[]> = {};
  for (const [name, { call }] of Object.entries(loads)) {
    for (let i = 0; i < 200; i++) await call(i % concurrency);
    samples[name] = [];
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, load] of Object.entries(loads)) samples[name]!.push(await sample(seconds / rounds, concurrency, load));
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, parts]) => {
      const latencies = parts.flatMap((part) => part.latencies).sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
      const result: Result = {
        rate: latencies.length / parts.reduce((sum, part) => sum + part.seconds, 0),
        p50: at(0.5),
        p99: at(0.99),
        cpuMsPerCall: parts.reduce((sum, part) => sum + part.cpuMs, 0) / latencies.length,
      };
      return [name, result];
    }),
  );
}
