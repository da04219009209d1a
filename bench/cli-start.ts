/**
 * CLI start-up benchmark: how long `berth --help` takes, beside `node -e 0`
 * (Node's own start) in the same run, as hyperfine would show them: a few
 * warm-up runs, then alternating timed runs of each, medians and ratios.
 *
 *   npx tsx bench/cli-start.ts [runs, default 20]
 *
 * `berth` is packages/cli/bin/berth.js, as `npx berth` runs it: the bundle
 * `npm install` built. The sources through tsx (what berth did before it was
 * bundled) are timed too, for comparison.
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const runs = Number(process.argv[2] ?? 20);
const WARMUP = 3;

const commands: Record<string, string[]> = {
  "node -e 0": ["-e", "0"],
  "berth --help (bundle)": [resolve(ROOT, "packages/cli/bin/berth.js"), "--help"],
  "berth --help (tsx sources)": ["--import=tsx", resolve(ROOT, "packages/cli/src/main.ts"), "--help"],
};

function timeOnce(args: string[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
for (const args of Object.values(commands)) for (let i = 0; i < WARMUP; i++) timeOnce(args);
// Alternating runs, so that a burst of load on a shared machine hits every command alike.
for (let i = 0; i < runs; i++) for (const [name, args] of Object.entries(commands)) times[name]!.push(timeOnce(args));

const baseline = median(times["node -e 0"]!);
console.log(`${runs} runs each after ${WARMUP} warm-up runs; median and min wall time`);
for (const name of Object.keys(commands)) {
  const values = times[name]!;
  const med = median(values);
  console.log(
    `${name.padEnd(28)} median ${med.toFixed(1).padStart(7)} ms   min ${Math.min(...values)
      .toFixed(1)
      .padStart(7)} ms   ${(med / baseline).toFixed(2)}x node -e 0   +${(med - baseline).toFixed(1)} ms`,
  );
}
