/**
 * Web console load benchmark: how long the console takes from navigation to
 * its sign-in form on screen in headless Chromium over loopback, beside a
 * one-line HTML page from the same server in the same run (the browser's
 * own cost of a navigation), alternating runs, medians and the ratio.
 *
 *   npx tsx bench/console-load.ts [runs, default 20]
 *
 * The files are served by the handler the API mounts (packages/api/src/console-files.ts),
 * from the bundle `npm install` built. Each run is a fresh browser context: nothing cached.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium } from "playwright-core";
import { silentLogger } from "@berth/kit";
import { loadConsole } from "../packages/api/src/console-files.js";

const runs = Number(process.argv[2] ?? 20);
const WARMUP = 3;

const serveConsole = await loadConsole(silentLogger);
const server = createServer((request, response) => {
  if (request.url === "/blank") {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end('<!doctype html><html lang="en"><title>blank</title><label for="x">Team token</label><input id="x"></html>');
    return;
  }
  if (!serveConsole(request, response)) {
    response.writeHead(404);
    response.end();
  }
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

/** Navigation to the "Team token" field being visible, in a fresh context. */
async function timeOnce(path: string): Promise<number> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const start = performance.now();
  await page.goto(`${origin}${path}`, { waitUntil: "commit" });
  await page.getByLabel("Team token").waitFor();
  const ms = performance.now() - start;
  await context.close();
  return ms;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const pages = { "one-line page": "/blank", "berth console": "/" };
const times: Record<string, number[]> = { "one-line page": [], "berth console": [] };
try {
  for (const path of Object.values(pages)) for (let i = 0; i < WARMUP; i++) await timeOnce(path);
  // Alternating runs, so that a burst of load on a shared machine hits both alike.
  for (let i = 0; i < runs; i++) for (const [name, path] of Object.entries(pages)) times[name]!.push(await timeOnce(path));
} finally {
  await browser.close();
  server.close();
}

const baseline = median(times["one-line page"]!);
console.log(`${runs} runs each after ${WARMUP} warm-up runs; navigation to the sign-in field on screen, fresh context each run`);
for (const name of Object.keys(pages)) {
  const values = times[name]!;
  const med = median(values);
  console.log(
    `${name.padEnd(16)} median ${med.toFixed(1).padStart(7)} ms   max ${Math.max(...values)
      .toFixed(1)
      .padStart(7)} ms   ${(med / baseline).toFixed(2)}x the one-line page`,
  );
}
