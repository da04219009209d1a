import { existsSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import { basename, join } from "node:path";
import test from "ava";
import type { ExecutionContext } from "ava";
import { ReleaseStatus } from "@berth/proto/type/v1/release";
import { openApiStore } from "../src/store/index.js";
import { createGitRepository, nodeAppFiles } from "./support/git-repository.js";
import { eventually, startPlatformHarness } from "./support/platform-harness.js";

// Pushes with the real git client to the API's remote, in front of the real scheduler and router.

/** A web process that answers with the content of message.txt, read at start. */
const WEB = `const http = require("node:http");
const message = require("node:fs").readFileSync("message.txt", "utf8");
http.createServer((request, response) => response.end(message)).listen(Number(process.env.PORT), process.env.HOST);
`;

/** GET / of an app through the router's proxy: the status and the body. */
function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/", headers: { host } }, (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** GET info/refs of the receive-pack service, as git's first request of a push. */
function infoRefs(apiUrl: string, app: string, authorization?: string): Promise<{ status: number; challenge: string | undefined }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`/git/${app}.git/info/refs?service=git-receive-pack`, apiUrl);
    http
      .get(url, { headers: authorization ? { authorization } : {} }, (response) => {
        response.resume();
        response.on("end", () => resolve({ status: response.statusCode ?? 0, challenge: response.headers["www-authenticate"] }));
      })
      .on("error", reject);
  });
}

/** A platform with acme's app "shop", and a Git repository whose remote "berth" pushes to it with acme's token. */
async function shopWithBerthRemote(t: ExecutionContext) {
  const h = await startPlatformHarness(t);
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const repo = await createGitRepository(t);
  await repo.git("remote", "add", "berth", `http://berth:${token}@${new URL(h.api.url).host}/git/shop.git`);
  return { h, clients, repo };
}

const basic = (token: string) => `Basic ${Buffer.from(`berth:${token}`).toString("base64")}`;

test("git push deploys main: the rollout streams back as remote: lines, the release records the commit, the app serves it", async (t) => {
  const { h, clients, repo } = await shopWithBerthRemote(t);

  const first = await repo.commit({ "web.js": WEB, "message.txt": "first", Procfile: "web: node web.js\n" }, "first version");
  const pushed = await repo.git("push", "berth", "main");
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stderr, new RegExp(`remote: berth: deploying ${first.slice(0, 7)} \\(main\\) to shop`));
  t.regex(pushed.stderr, /remote: +rollout of v1 started/);
  t.regex(pushed.stderr, /remote: +shop-web-v1-\S+ healthy/);
  t.regex(pushed.stderr, /remote: +v1 is live/);
  t.regex(pushed.stderr, /\* \[new branch\] +main -> main/);
  const [release] = (await clients.apps.listReleases({ app: "shop" })).releases;
  t.is(release!.artifact!.commit, first);
  t.is(release!.description, `${first.slice(0, 7)} first version`);
  t.deepEqual(await get(h.router.proxyHttpPort, "shop.berth.localhost"), { status: 200, body: "first" });

  // A release phase that fails refuses the push: the branch stays where it was and v1 keeps serving.
  const broken = await repo.commit({ "message.txt": "second", Procfile: "web: node web.js\nrelease: echo migrating; exit 3\n" }, "failing migration");
  const refused = await repo.git("push", "berth", "main");
  t.not(refused.code, 0);
  t.regex(refused.stderr, /remote: +release phase failed \(RELEASE_PHASE_FAILED\)/);
  t.regex(refused.stderr, /remote: +\| migrating/);
  t.regex(refused.stderr, /remote: berth: deploy of v2 failed/);
  t.regex(refused.stderr, /\[remote rejected\] main -> main \(pre-receive hook declined\)/);
  const remoteMain = await repo.git("ls-remote", "berth", "refs/heads/main");
  t.is(remoteMain.stdout.split("\t")[0], first);
  const releases = (await clients.apps.listReleases({ app: "shop" })).releases;
  t.is(releases.find((r) => r.version === 2)?.status, ReleaseStatus.FAILED);
  t.is(releases.find((r) => r.version === 2)?.artifact?.commit, broken);
  t.deepEqual(await get(h.router.proxyHttpPort, "shop.berth.localhost"), { status: 200, body: "first" });

  // Other branches are stored without a deploy.
  await repo.git("checkout", "--quiet", "-b", "feature");
  const stored = await repo.git("push", "berth", "feature");
  t.is(stored.code, 0, stored.stderr);
  t.regex(stored.stderr, /only a push to main or master deploys/);
  t.is((await clients.apps.listReleases({ app: "shop" })).releases.length, 2);

  // A push that deploys is audited once, OK when it made its release (the second one's release phase failed later).
  const store = await openApiStore({ databaseUrl: h.config.databaseUrl, dataDir: h.config.dataDir });
  t.teardown(() => store.close());
  const pushes = (await store.audit.list({ team: "acme", limit: 10 })).filter((event) => event.rpc === "git push");
  t.deepEqual(
    pushes.map((event) => [event.app, event.code]),
    [
      ["shop", "OK"],
      ["shop", "OK"],
    ],
  );

  // Deleting the app deletes its repository.
  const repository = join(h.config.dataDir, "git", "shop.git");
  t.true(existsSync(repository));
  await clients.apps.deleteApp({ app: "shop" });
  t.false(existsSync(repository));
});

test("the git remote refuses a missing or wrong token with a challenge, another team's app as not found, answered on the headers alone", async (t) => {
  const h = await startPlatformHarness(t);
  const acme = await h.team("acme");
  const rival = await h.team("rival");
  await acme.clients.apps.createApp({ name: "shop" });

  const missing = await infoRefs(h.api.url, "shop");
  t.is(missing.status, 401);
  t.regex(missing.challenge ?? "", /^Basic realm="berth"/);
  const wrong = await infoRefs(h.api.url, "shop", basic("berth_not-a-token"));
  t.is(wrong.status, 401);
  t.truthy(wrong.challenge);
  t.is((await infoRefs(h.api.url, "shop", basic(rival.token))).status, 404);
  t.is((await infoRefs(h.api.url, "nowhere", basic(acme.token))).status, 404);
  t.is((await infoRefs(h.api.url, "shop", basic(h.adminToken))).status, 403);
  t.is((await infoRefs(h.api.url, "shop", basic(acme.token))).status, 200);

  const repo = await createGitRepository(t);
  await repo.commit({ "web.js": WEB, "message.txt": "x" }, "x");
  const host = new URL(h.api.url).host;
  const refused = await repo.git("push", `http://berth:berth_wrong@${host}/git/shop.git`, "main");
  t.not(refused.code, 0);
  t.regex(refused.stderr, /Authentication failed/);
  const rivalPush = await repo.git("push", `http://berth:${rival.token}@${host}/git/shop.git`, "main");
  t.not(rivalPush.code, 0);
  t.regex(rivalPush.stderr, /not found/);
  t.is((await acme.clients.apps.listReleases({ app: "shop" })).releases.length, 0);

  // A push without a credential is answered on its headers: no byte of the announced body is sent.
  const answer = await new Promise<number>((resolve, reject) => {
    const request = http.request(new URL("/git/shop.git/git-receive-pack", h.api.url), {
      method: "POST",
      headers: { "content-type": "application/x-git-receive-pack-request", "content-length": String(100 * 1024 * 1024) },
    });
    request.on("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
      request.destroy();
    });
    request.on("error", reject);
    request.flushHeaders();
  });
  t.is(answer, 401);
});

test("a Node source is built before its release (npm ci, the build script), with its output in the push and node_modules cached; a broken build refuses the push", async (t) => {
  const { h, clients, repo } = await shopWithBerthRemote(t);
  const build = "echo compiling; cp message.txt built.txt";
  await repo.commit(nodeAppFiles(repo, build, "first"), "first");
  const first = await repo.git("push", "berth", "main");
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /remote: +build started/);
  t.regex(first.stderr, /remote: +\| > npm ci --omit=dev/);
  t.regex(first.stderr, /remote: +\| > npm run build.*remote: +\| compiling/s);
  t.regex(first.stderr, /remote: +build succeeded.*remote: +v1 is live/s);
  const [v1] = (await clients.apps.listReleases({ app: "shop" })).releases;
  t.deepEqual(
    v1!.processes.map((p) => [p.processType, p.command]),
    [["web", "npm start"]],
  );
  t.deepEqual(await get(h.router.proxyHttpPort, "shop.berth.localhost"), { status: 200, body: "hello first" });

  // The lockfile did not change: node_modules come from the cache and only the build script runs.
  await repo.commit({ "message.txt": "second" }, "second");
  const second = await repo.git("push", "berth", "main");
  t.is(second.code, 0, second.stderr);
  t.regex(second.stderr, /remote: +\| node_modules restored from the build cache/);
  t.notRegex(second.stderr, /npm ci/);
  t.deepEqual(await get(h.router.proxyHttpPort, "shop.berth.localhost"), { status: 200, body: "hello second" });

  // A build that fails refuses the push; v2 keeps serving.
  await repo.commit(nodeAppFiles(repo, "echo 'src/app.ts(1,1): error TS1005'; exit 2", "third"), "broken build");
  const broken = await repo.git("push", "berth", "main");
  t.not(broken.code, 0);
  t.regex(broken.stderr, /remote: +\| src\/app\.ts\(1,1\): error TS1005/);
  t.regex(broken.stderr, /remote: +build failed \(BUILD_FAILED\) - the build exited with code 2/);
  t.regex(broken.stderr, /pre-receive hook declined/);
  const v3 = (await clients.apps.listReleases({ app: "shop" })).releases.find((r) => r.version === 3);
  t.is(v3?.status, ReleaseStatus.FAILED);
  t.is(v3?.failureReason, "BUILD_FAILED");
  t.deepEqual(await get(h.router.proxyHttpPort, "shop.berth.localhost"), { status: 200, body: "hello second" });
});

test("a push outlives a scheduler restart during its build: the build is resumed, not run twice, and the push reports the rollout's end", async (t) => {
  const { h, repo } = await shopWithBerthRemote(t);
  // The build runs as a plain process here: it records each of its runs beside the repository.
  const runs = join(repo.dir, "..", `${basename(repo.dir)}-build-runs`);
  t.teardown(() => rmSync(runs, { force: true }));
  await repo.commit(nodeAppFiles(repo, `echo run >> ${runs}; sleep 3; cp message.txt built.txt`, "after a restart"), "slow build");

  const pushing = repo.git("push", "berth", "main");
  await eventually(async () => (existsSync(runs) ? true : undefined), "the build to start");
  await h.restartScheduler();
  const pushed = await pushing;
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stderr, /remote: +build succeeded.*remote: +v1 is live/s);
  t.is(readFileSync(runs, "utf8"), "run\n");
  t.deepEqual(await get(h.router.proxyHttpPort, "shop.berth.localhost"), { status: 200, body: "hello after a restart" });
});
