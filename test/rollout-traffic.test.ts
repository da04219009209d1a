import http from "node:http";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import type { RolloutEvent } from "@berth/proto/type/v1/release";
import { eventually } from "@berth/kit/testing";
import { followToEnd, startLoad, startRolloutPlatform } from "./support/rollout-platform.js";
import type { LoadTally } from "./support/rollout-platform.js";

// /work answers 200 (or resets the connection when FAIL_WORK is set), /boom answers 500,
// the health check (/) always 200. On SIGTERM it lingers a little: the rollout's
// window then outlasts the load, which the test stops when the old replica drains.
const WEB = `
const http = require("node:http");
const server = http.createServer((request, response) => {
  if (request.url === "/boom") { response.statusCode = 500; return response.end("boom"); }
  if (request.url === "/work" && process.env.FAIL_WORK) return request.socket.destroy();
  response.end("release " + process.env.BERTH_RELEASE);
});
server.keepAliveTimeout = 10000;
server.listen(Number(process.env.PORT));
process.on("SIGTERM", () => setTimeout(() => process.exit(0), 700));
`;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function get(port: number, host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false, headers: { Host: host } }, (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      })
      .on("error", reject);
  });
}

/**
 * Rolls `change` out under load over two replicas, one at a time. The load
 * runs from the rollout's start until the second new replica has started and
 * `served` shows that the new release answered some of it: by then the first
 * new one serves beside the last old one, and the rollout still has a health
 * check and a drain to go, so its window holds the whole load. (The second
 * start alone is no sign that the new release served: it comes in the very
 * step the first new replica turns ready, before a router may have sent it
 * a request.)
 */
async function rollOutUnderLoad(
  platform: Awaited<ReturnType<typeof startRolloutPlatform>>,
  app: string,
  change: Record<string, string>,
  served: (seen: LoadTally, version: number) => boolean,
) {
  const { release, rollout } = await platform.scheduler.updateConfig({ app, set: change, unset: [] });
  const load = startLoad(platform.proxyPort, platform.hostname(app), { concurrency: 4, appErrorEvery: 10 });
  let started = 0;
  let rolloutEnded = false;
  const stopped = (async () => {
    // Should the rollout end first, the load stops there and the assertions say what was missing.
    while (!(started >= 2 && served(load.tally, release!.version)) && !rolloutEnded) await pause(20);
    await load.stop();
    return Date.now();
  })();
  const result = await followToEnd(platform.scheduler, app, rollout!.id, (event: RolloutEvent) => {
    if (event.kind === RolloutEventKind.REPLICA_STARTED) started += 1;
  });
  rolloutEnded = true;
  const loadEndedAt = await stopped;
  return { ...result, seen: load.tally, version: release!.version, loadEndedAt };
}

test("a rollout under load publishes the requests and failures the load client saw, per release", async (t) => {
  const platform = await startRolloutPlatform(t);
  const app = "counted";
  const first = await platform.deployApp(app, { "web.js": WEB });
  t.is(first.rollout.state, RolloutState.SUCCEEDED);
  await platform.scheduler.updateFormation({ app, changes: [{ processType: "web", replicas: 2 }] });
  await eventually(
    async () => ((await platform.scheduler.listReplicas({ app })).replicas.filter((replica) => replica.ready).length === 2 ? true : undefined),
    "two replicas",
  );
  const host = platform.hostname(app);
  t.is(await get(platform.proxyPort, host, "/work"), 200);
  // A quiet gap longer than the routers' report period: the request above belongs to no later window.
  await pause(400);

  const healthy = await rollOutUnderLoad(platform, app, { COLOR: "blue" }, (seen, version) => seen.releases.has(version));
  t.is(healthy.rollout.state, RolloutState.SUCCEEDED);
  const traffic = healthy.rollout.traffic!;
  t.true(healthy.seen.requests > 20, `only ${healthy.seen.requests} requests were sent`);
  t.true(healthy.loadEndedAt < timestampDate(healthy.rollout.finishedAt!).getTime(), "the load outlasted the rollout");
  t.deepEqual(RolloutEventKind[healthy.events.at(-1)!.kind], "TRAFFIC_COUNTED");
  t.true(traffic.complete);
  t.is(Number(traffic.requests), healthy.seen.requests);
  t.is(Number(traffic.failed), healthy.seen.failed);
  t.is(Number(traffic.failed), 0);
  t.is(Number(traffic.appErrors), healthy.seen.appErrors);
  // Both releases served part of the window, and the parts add up.
  const byVersion = new Map(traffic.byRelease.map((figures) => [figures.releaseVersion, figures]));
  t.deepEqual([...byVersion.keys()].sort(), [1, healthy.version].sort());
  t.is(
    traffic.byRelease.reduce((sum, figures) => sum + Number(figures.requests), 0),
    healthy.seen.requests,
  );
  t.regex(healthy.events.at(-1)!.message, new RegExp(`^${healthy.seen.requests.toLocaleString("en-US")} requests during the rollout, 0 failed`));

  await pause(400);
  const failing = await rollOutUnderLoad(platform, app, { FAIL_WORK: "1" }, (seen) => seen.failed > 0);
  const failed = failing.rollout.traffic!;
  t.true(failing.seen.failed > 0, "the failing release failed no request");
  t.true(failing.loadEndedAt < timestampDate(failing.rollout.finishedAt!).getTime(), "the load outlasted the rollout");
  t.is(Number(failed.requests), failing.seen.requests);
  t.is(Number(failed.failed), failing.seen.failed);
  t.is(Number(failed.appErrors), failing.seen.appErrors);
  // Every failure is the new release's: the one it replaced served its share cleanly.
  const failingFigures = failed.byRelease.find((figures) => figures.releaseVersion === failing.version);
  t.is(Number(failingFigures?.failed), failing.seen.failed);
  t.is(Number(failed.byRelease.find((figures) => figures.releaseVersion === healthy.version)?.failed ?? 0n), 0);

  // The release record carries the figures of the rollout that brought it in.
  const { releases } = await platform.scheduler.listReleases({ app });
  const record = releases.find((release) => release.version === failing.version);
  t.is(Number(record?.rolloutTraffic?.failed), failing.seen.failed);
  t.is(Number(record?.rolloutTraffic?.requests), failing.seen.requests);

  // And the router's metrics carry them per app and process.
  const metrics = await fetch(`${platform.router.url}/metrics`).then((response) => response.text());
  const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*app="${app}"[^}]*process_type="web"[^}]*\\} (\\d+)`, "m").exec(metrics)?.[1]);
  t.is(value("berth_router_requests_failed_total"), failing.seen.failed);
  t.is(value("berth_router_requests_total"), 1 + healthy.seen.requests + failing.seen.requests);
});

test("ReportTraffic refuses a report that does not add up, naming the field", async (t) => {
  const platform = await startRolloutPlatform(t);
  const error = await t.throwsAsync(
    platform.scheduler.reportTraffic({
      consumer: "router-x",
      periodStart: { seconds: 10n },
      periodEnd: { seconds: 11n },
      counts: [{ app: "a", figures: { processType: "web", releaseVersion: 1, requests: 1n, failed: 2n } }],
    }),
  );
  t.is(ConnectError.from(error).code, Code.InvalidArgument);
  t.regex(error!.message, /counts\[0\]\.figures/);
  const backwards = await t.throwsAsync(platform.scheduler.reportTraffic({ consumer: "router-x", periodStart: { seconds: 11n }, periodEnd: { seconds: 10n } }));
  t.is(ConnectError.from(backwards).code, Code.InvalidArgument);
  t.regex(backwards!.message, /period_end/);
});
