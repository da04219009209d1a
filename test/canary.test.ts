import http from "node:http";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { CanaryState, CanaryTrafficState, ReleaseStatus, RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import type { CanaryPolicy } from "@berth/proto/type/v1/release";
import { eventually } from "@berth/kit/testing";
import { followToEnd, startRolloutPlatform } from "./support/rollout-platform.js";
import type { RolloutPlatform } from "./support/rollout-platform.js";

// Answers "release N" on every path (N from its replica's name); BROKEN makes /work answer 500 (the health check, /, stays 200).
const WEB = `
const http = require("node:http");
const version = /-v(\\d+)-[0-9a-f]+$/.exec(process.env.BERTH_REPLICA_NAME)[1];
const server = http.createServer((request, response) => {
  if (request.url === "/work" && process.env.BROKEN) { response.statusCode = 500; return response.end("release " + version + " broken"); }
  response.end("release " + version);
});
server.keepAliveTimeout = 10000;
server.listen(Number(process.env.PORT));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

interface Answer {
  status: number;
  /** The release that answered, from the body. */
  release: number;
  setCookie: string | undefined;
}

function get(platform: RolloutPlatform, app: string, agent: http.Agent, cookie?: string): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { Host: platform.hostname(app) };
    if (cookie !== undefined) headers.Cookie = cookie;
    http
      .get({ host: "127.0.0.1", port: platform.proxyPort, path: "/work", agent, headers }, (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            release: Number(/^release (\d+)/.exec(body)?.[1] ?? 0),
            setCookie: response.headers["set-cookie"]?.[0],
          }),
        );
        response.on("error", () => resolve({ status: 0, release: 0, setCookie: undefined }));
      })
      .on("error", () => resolve({ status: 0, release: 0, setCookie: undefined }));
  });
}

/** Sends `count` cookie-less requests over `concurrency` keep-alive connections; returns every answer. */
async function burst(platform: RolloutPlatform, app: string, count: number, concurrency = 8): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const answers: Answer[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < count) {
        sent += 1;
        answers.push(await get(platform, app, agent));
      }
    }),
  );
  agent.destroy();
  return answers;
}

/** Cookie-less requests until stopped, as a stream of clients outside any one release. */
function startLoad(platform: RolloutPlatform, app: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const answers: Answer[] = [];
  let stopped = false;
  const loops = Array.from({ length: 2 }, async () => {
    while (!stopped) answers.push(await get(platform, app, agent));
  });
  return {
    answers,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
      return answers;
    },
  };
}

async function deployCanary(platform: RolloutPlatform, app: string, files: Record<string, string>, canary: Partial<CanaryPolicy>) {
  const uploadId = await platform.uploadSource(app, files);
  const { rollout, release } = await platform.scheduler.createRelease({
    app,
    artifact: { source: { case: "sourceUploadId", value: uploadId } },
    procfile: "web: node web.js",
    canary: { percent: 10, ...canary },
  });
  return { rolloutId: rollout!.id, version: release!.version };
}

async function canaryRunning(platform: RolloutPlatform, app: string) {
  return eventually(async () => {
    const { rollout } = await platform.scheduler.getCanary({ app });
    return rollout?.canary?.state === CanaryState.RUNNING ? rollout : undefined;
  }, "the canary taking requests");
}

test.serial("a canary takes its share of requests, keeps each client on its release, and is promoted step by step", async (t) => {
  const platform = await startRolloutPlatform(t);
  const app = "canary";
  t.is((await platform.deployApp(app, { "web.js": WEB })).rollout.state, RolloutState.SUCCEEDED);

  // v2 at 10 %, held there (a long interval) while the split is measured.
  const second = await deployCanary(platform, app, { "web.js": WEB }, { intervalMs: 600_000 });
  await canaryRunning(platform, app);
  // The router has the share once it keeps clients on a release.
  await eventually(async () => ((await burst(platform, app, 1, 1))[0]?.setCookie ? true : undefined), "the router splitting requests");
  const answers = await burst(platform, app, 3000);
  t.deepEqual(
    answers.filter((answer) => answer.status !== 200),
    [],
  );
  const toCanary = answers.filter((answer) => answer.release === second.version).length;
  // 10 % of 3000 is 300; five standard deviations (16.4) either side.
  t.true(toCanary > 218 && toCanary < 382, `${toCanary} of 3000 requests reached the canary`);
  t.is(toCanary + answers.filter((answer) => answer.release === 1).length, 3000);
  // Each cookie-less answer tells the client which release it got.
  t.true(answers.every((answer) => answer.setCookie === `berth-release=${answer.release}; Path=/; HttpOnly; SameSite=Lax`));

  // A client kept on either release stays there, and is not told again.
  for (const release of [second.version, 1]) {
    const agent = new http.Agent({ keepAlive: true });
    const sticky = await Promise.all(Array.from({ length: 100 }, () => get(platform, app, agent, `theme=dark; berth-release=${release}`)));
    agent.destroy();
    t.deepEqual([...new Set(sticky.map((answer) => answer.release))], [release]);
    t.true(sticky.every((answer) => answer.setCookie === undefined));
  }

  // Promoted by hand: the rollout completes like any other.
  const promoted = await platform.scheduler.promoteCanary({ app });
  t.is(promoted.rollout?.canary?.state, CanaryState.PROMOTED);
  const secondEnd = await followToEnd(platform.scheduler, app, second.rolloutId);
  t.is(secondEnd.rollout.state, RolloutState.SUCCEEDED);
  t.like(secondEnd.rollout.canary, { byHand: true, reason: "PROMOTED_BY_HAND", currentPercent: 100 });
  const error = await t.throwsAsync(platform.scheduler.abortCanary({ app }));
  t.is(ConnectError.from(error).code, Code.FailedPrecondition);

  // v3 with a 1 s interval under load: raised 10, 40, 70, then promoted, with no failed request.
  const third = await deployCanary(platform, app, { "web.js": WEB }, { stepPercent: 30, intervalMs: 1000 });
  const load = startLoad(platform, app);
  const thirdEnd = await followToEnd(platform.scheduler, app, third.rolloutId);
  const seen = await load.stop();
  t.is(thirdEnd.rollout.state, RolloutState.SUCCEEDED);
  const steps = thirdEnd.events
    .filter((event) => event.kind === RolloutEventKind.CANARY_STEP)
    .map((event) => /(\d+) % of web requests/.exec(event.message)?.[1]);
  t.deepEqual(steps, ["10", "40", "70"]);
  t.is(thirdEnd.events.filter((event) => event.kind === RolloutEventKind.CANARY_PROMOTED).length, 1);
  t.deepEqual(
    seen.filter((answer) => answer.status !== 200),
    [],
  );
  t.true(seen.some((answer) => answer.release === third.version));
  const after = await burst(platform, app, 50, 2);
  t.deepEqual([...new Set(after.map((answer) => answer.release))], [third.version]);

  // The release's record keeps the outcome and the figures of its canary.
  const { releases } = await platform.scheduler.listReleases({ app });
  const record = releases.find((release) => release.version === third.version)!;
  t.is(record.status, ReleaseStatus.SUCCEEDED);
  // Counted to its end: the routers' reports past the promotion came before the rollout's own figures were final.
  t.like(record.canary, { state: CanaryState.PROMOTED, byHand: false, reason: "PROMOTED", trafficState: CanaryTrafficState.COMPLETE });
  const canaryFigures = record.canary!.traffic.find((figures) => figures.releaseVersion === third.version);
  t.true(Number(canaryFigures?.requests) > 0);
  t.is(Number(canaryFigures?.failed), 0);
});

test.serial("a canary answering 5xx past its limit is rolled back, and clients outside its share see no failure", async (t) => {
  const platform = await startRolloutPlatform(t);
  const app = "broken-canary";
  t.is((await platform.deployApp(app, { "web.js": WEB })).rollout.state, RolloutState.SUCCEEDED);
  const load = startLoad(platform, app);
  const broken = await deployCanary(platform, app, { "web.js": WEB.replace("process.env.BROKEN", "true") }, { percent: 20, intervalMs: 1000 });
  const end = await followToEnd(platform.scheduler, app, broken.rolloutId);
  const seen = await load.stop();

  t.is(end.rollout.state, RolloutState.ROLLED_BACK);
  const aborted = end.events.find((event) => event.kind === RolloutEventKind.CANARY_ABORTED);
  t.is(aborted?.reason, "FAILURE_RATE_EXCEEDED");
  // The canary's own 500s reached only its share; everyone else was served by v1, and nothing failed in the platform.
  t.true(seen.some((answer) => answer.release === broken.version && answer.status === 500));
  t.deepEqual(
    seen.filter((answer) => answer.release !== broken.version && answer.status !== 200),
    [],
  );
  t.true(seen.every((answer) => answer.status === 200 || answer.status === 500));
  const after = await burst(platform, app, 50, 2);
  t.deepEqual([...new Set(after.map((answer) => `${answer.status} ${answer.release}`))], ["200 1"]);
  // Out of the endpoints first (above), then stopped.
  await eventually(
    async () => ((await platform.scheduler.listReplicas({ app })).replicas.every((replica) => replica.releaseVersion === 1) ? true : undefined),
    "the canary replica stopped",
  );

  const { release } = await platform.scheduler.getRelease({ app, version: broken.version });
  t.is(release?.status, ReleaseStatus.ROLLED_BACK);
  t.like(release?.canary, { state: CanaryState.ABORTED, byHand: false, reason: "FAILURE_RATE_EXCEEDED" });
  const figures = release!.canary!.traffic.find((entry) => entry.releaseVersion === broken.version);
  t.true(Number(figures?.appErrors) > 0);
});

test.serial("bad canary requests are refused naming the field, and change nothing", async (t) => {
  const platform = await startRolloutPlatform(t);
  const app = "canary-checks";
  await platform.deployApp(app, { "web.js": WEB });
  const uploadId = await platform.uploadSource(app, { "web.js": WEB });
  const release = (canary: Partial<CanaryPolicy>, procfile = "web: node web.js") =>
    platform.scheduler.createRelease({ app, artifact: { source: { case: "sourceUploadId", value: uploadId } }, procfile, canary: { percent: 10, ...canary } });
  const refusals: [Partial<CanaryPolicy>, RegExp][] = [
    [{ percent: 0 }, /canary\.percent/],
    [{ percent: 101 }, /canary\.percent/],
    [{ stepPercent: 0 }, /canary\.step_percent/],
    [{ intervalMs: 500 }, /canary\.interval_ms/],
    [{ maxFailureRate: -1 }, /canary\.max_failure_rate/],
  ];
  for (const [canary, field] of refusals) {
    const error = await t.throwsAsync(release(canary));
    t.is(ConnectError.from(error).code, Code.InvalidArgument);
    t.regex(error!.message, field);
  }
  const noWeb = await t.throwsAsync(release({}, "worker: node web.js"));
  t.is(ConnectError.from(noWeb).code, Code.FailedPrecondition);
  t.regex(noWeb!.message, /canary: the release has no web type/);
  // admin-web is new, so at zero replicas: nothing for a canary to take a share of.
  const scaledDown = await t.throwsAsync(release({}, "admin-web: node web.js"));
  t.is(ConnectError.from(scaledDown).code, Code.FailedPrecondition);
  t.regex(scaledDown!.message, /canary: no web type \(web or \*-web\) of the release is scaled up/);
  t.is((await platform.scheduler.listReleases({ app })).releases.length, 1);

  const running = await release({ intervalMs: 600_000 });
  const twice = await t.throwsAsync(release({}));
  t.is(ConnectError.from(twice).code, Code.FailedPrecondition);
  await canaryRunning(platform, app);
  await platform.scheduler.abortCanary({ app });
  const end = await followToEnd(platform.scheduler, app, running.rollout!.id);
  t.is(end.rollout.state, RolloutState.ROLLED_BACK);
  t.like(end.rollout.canary, { state: CanaryState.ABORTED, byHand: true, reason: "ABORTED_BY_HAND" });
});
