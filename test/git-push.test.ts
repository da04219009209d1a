import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { createGitRepository, nodeAppFiles } from "@berth/api/testing";
import { ReleaseStatus } from "@berth/proto/type/v1/release";
import { runcUsable } from "@berth/scheduler";
import { freePort, startPlatformProcesses } from "./support/platform.js";
import { httpsGet, publicApi } from "./support/public-api.js";

// The whole platform as separate processes (containers on runc where it runs): a real repository pushed
// with the git client to the API's remote, set up by `berth git:remote`, the token coming from `berth git:credential`.

const root = fileURLToPath(new URL("..", import.meta.url));
const ADMIN_TOKEN = "git-push-admin-token-0123456789";

test("git push to the platform: berth git:remote, the build and the rollout in the push output, the pushed commit served; broken builds, failing release phases and wrong tokens refused", async (t) => {
  const httpsPort = await freePort();
  const platform = await startPlatformProcesses({
    BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
    BERTH_ROUTER_HTTP_PORT: String(await freePort()),
    BERTH_ROUTER_HTTPS_PORT: String(httpsPort),
    BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "20000",
    BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS: "20000",
    BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "1000",
    BERTH_SCHEDULER_STOP_GRACE_MS: "1000",
  });
  t.teardown(() => platform.stop());
  const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
  await admin.teams.createTeam({ name: "acme" });
  const token = (await admin.teams.createToken({ team: "acme", description: "git push" })).secret;
  const acme = publicApi(platform.urls.api, token);
  await acme.apps.createApp({ name: "shop" });
  const ca = readFileSync(join(platform.dataDir, "router", "platform-ca.pem"), "utf8");
  const served = async () => (await httpsGet(httpsPort, "shop.berth.localhost", "/", ca)).body;

  // `berth` on PATH, as git runs it for the credential helper git:remote sets up.
  const bin = mkdtempSync(join(tmpdir(), "berth-bin-"));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(join(bin, "berth"), `#!/bin/sh\nexec '${process.execPath}' '${join(root, "packages/cli/bin/berth.js")}' "$@"\n`);
  chmodSync(join(bin, "berth"), 0o755);
  const repo = await createGitRepository(t, {
    PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    BERTH_API_URL: platform.urls.api,
    BERTH_TOKEN: token,
    BERTH_CONFIG_DIR: bin,
  });
  const commit = await repo.commit(nodeAppFiles(repo, "cp message.txt built.txt", "from git"), "first");
  const remote = await repo.shell("berth git:remote --app shop");
  t.is(remote.code, 0, remote.stderr);
  t.is(remote.stdout, `set git remote berth to ${platform.urls.api}/git/shop.git\n`);

  const pushed = await repo.git("push", "berth", "main");
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stderr, /remote: +build started.*remote: +\| > npm ci --omit=dev.*remote: +build succeeded.*remote: +v1 is live/s);
  t.regex(pushed.stderr, new RegExp(`remote: berth: deployed ${commit.slice(0, 7)} to shop as v1`));
  t.is(await served(), "hello from git");
  const [v1] = (await acme.apps.listReleases({ app: "shop" })).releases;
  t.is(v1!.artifact!.commit, commit);
  // Where runc runs, the app (and so its build, through the same task runner) ran in a container.
  const { replicas } = await acme.formation.listReplicas({ app: "shop", processType: "web" });
  t.deepEqual(
    replicas.map((replica) => replica.isolation),
    [(await runcUsable()).usable ? "container" : "none"],
  );

  // A broken build: the push fails, the branch stays, v1 keeps serving.
  await repo.commit(nodeAppFiles(repo, "echo 'build broke'; exit 1", "never served"), "broken build");
  const brokenBuild = await repo.git("push", "berth", "main");
  t.not(brokenBuild.code, 0);
  t.regex(brokenBuild.stderr, /remote: +\| build broke.*remote: +build failed \(BUILD_FAILED\)/s);
  t.is((await repo.git("ls-remote", "berth", "refs/heads/main")).stdout.split("\t")[0], commit);
  t.is(await served(), "hello from git");

  // A failing release phase: the same.
  await repo.commit(
    { ...nodeAppFiles(repo, "cp message.txt built.txt", "never served either"), Procfile: "web: npm start\nrelease: echo 'migration failed'; exit 1\n" },
    "failing release",
  );
  const failedRelease = await repo.git("push", "berth", "main");
  t.not(failedRelease.code, 0);
  t.regex(failedRelease.stderr, /remote: +release phase failed.*remote: +\| migration failed/s);
  t.is(await served(), "hello from git");
  const statuses = (await acme.apps.listReleases({ app: "shop" })).releases.map((release) => [release.version, release.status]);
  t.deepEqual(statuses, [
    [3, ReleaseStatus.FAILED],
    [2, ReleaseStatus.FAILED],
    [1, ReleaseStatus.SUCCEEDED],
  ]);

  // A wrong token is refused before anything is read.
  const wrong = await repo.git("push", `http://berth:berth_wrong-token@${new URL(platform.urls.api).host}/git/shop.git`, "main");
  t.not(wrong.code, 0);
  t.regex(wrong.stderr, /Authentication failed/);
});
