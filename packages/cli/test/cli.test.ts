import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { berthRunner, tempDir } from "./support/berth-runner.js";
import type { Teardown } from "./support/berth-runner.js";
import { ExitCode } from "../src/exit-codes.js";
import { createInternalClient } from "@berth/kit";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import { DEMO_DIR, INTERNAL_TOKEN, deployDirectory, followRolloutThroughApi, mutatingCalls, startApiHarness, startPlatformHarness } from "@berth/api/testing";
import { RolloutState } from "@berth/proto/type/v1/release";
import { eventually } from "@berth/kit/testing";

function appDir(t: Teardown, procfile: string): string {
  const dir = tempDir(t, "berth-cli-app-");
  writeFileSync(join(dir, "Procfile"), procfile);
  writeFileSync(join(dir, "server.js"), "console.log('hello')\n");
  mkdirSync(join(dir, ".git"));
  writeFileSync(join(dir, ".git", "HEAD"), "ref: refs/heads/main\n");
  return dir;
}

test("login saves credentials that later commands use; BERTH_TOKEN and BERTH_API_URL override them", async (t) => {
  const h = await startApiHarness(t);
  const { token } = await h.team("acme");
  const berth = berthRunner(t, {});
  const notLoggedIn = await berth(["apps"], { env: { BERTH_API_URL: h.api.url } });
  t.is(notLoggedIn.code, ExitCode.auth);
  t.is(notLoggedIn.stderr, "berth: not logged in: run berth login, or set BERTH_TOKEN\n");
  const login = await berth(["login", "--api-url", h.api.url], { stdin: `${token}\n` });
  t.is(login.code, ExitCode.ok, login.stderr);
  t.regex(login.stdout, /Logged in to .* as team acme/);
  const file = join(login.configDir, "credentials.json");
  t.deepEqual(JSON.parse(readFileSync(file, "utf8")), { apiUrl: h.api.url, token });
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is((await berth(["whoami"])).stdout.split(" (")[0], "team acme");
  const overridden = await berth(["whoami"], { env: { BERTH_TOKEN: h.adminToken } });
  t.regex(overridden.stdout, /^admin/);
  const unreachable = await berth(["apps"], { env: { BERTH_API_URL: "http://127.0.0.1:1" } });
  t.is(unreachable.code, ExitCode.unreachable);
  t.regex(unreachable.stderr, /^berth: unavailable: .*\n$/);
  const badLogin = await berth(["login", "--api-url", h.api.url, "--token", "wrong-token-entirely"]);
  t.is(badLogin.code, ExitCode.auth);
  t.deepEqual(JSON.parse(readFileSync(file, "utf8")).token, token, "a refused login keeps the saved credentials");
});

test("an admin creates a team and its token; the team manages its apps, formation, config, releases, domains and autoscale", async (t) => {
  const h = await startApiHarness(t);
  const asAdmin = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: h.adminToken });
  t.is((await asAdmin(["teams:create", "acme"])).code, ExitCode.ok);
  const minted = await asAdmin(["tokens:create", "--team", "acme", "--description", "laptop"]);
  t.is(minted.code, ExitCode.ok);
  const token = minted.stdout.trim();
  t.regex(token, /^berth_[0-9a-f]{16}_\S+$/, "stdout carries the secret alone");
  t.regex(minted.stderr, /shown only this once/);

  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token, BERTH_APP: "shop" });
  t.is((await berth(["apps:create", "shop"])).code, ExitCode.ok);
  h.router.knowApp("shop");
  t.regex((await berth(["apps"])).stdout, /^NAME\s+RELEASE\s+ROLLING OUT\s+CREATED\nshop\s+-\s+-\s+\d{4}-/);

  const scaled = await berth(["pods:scale", "web=3", "worker=1"]);
  t.is(scaled.code, ExitCode.ok, scaled.stderr);
  t.regex(scaled.stdout, /\nweb\s+0\/3\s+standard-1x\s.*web\s.*https:\/\/shop\.berth\.localhost/);
  t.regex(scaled.stdout, /\napi-tcp\s+0\/0\s.*tcp\s.*shop-api-tcp/);
  const pods = JSON.parse((await berth(["pods", "--json"])).stdout) as { processType: string; replicas?: number }[];
  t.deepEqual(
    pods.map((p) => [p.processType, p.replicas ?? 0]),
    [
      ["web", 3],
      ["admin-web", 0],
      ["worker", 1],
      ["api-tcp", 0],
    ],
  );
  t.is((await berth(["pods:type", "web=standard-2x"])).code, ExitCode.ok);
  t.regex((await berth(["pods:sizes"])).stdout, /standard-2x\s+500m\s+1G/);

  t.is((await berth(["config:set", "MODE=live", "URL=postgres://db?x=1", "--detach"])).code, ExitCode.ok);
  t.is((await berth(["config"])).stdout, "MODE: live\nURL:  postgres://db?x=1\n");
  t.deepEqual(JSON.parse((await berth(["config", "--json"])).stdout), { MODE: "live", URL: "postgres://db?x=1" });
  t.is((await berth(["config:unset", "MODE", "--detach"])).code, ExitCode.ok);
  t.regex((await berth(["rollback", "v1", "--detach"])).stdout, /release v3 is rolling out/);
  t.regex((await berth(["releases"])).stdout, /^VERSION\s+STATUS\s+COMMIT\s+DESCRIPTION\s+CREATED\s+ROLLOUT\s+CANARY\nv3\s+succeeded\s+-\s+Rollback to v1/);

  t.regex((await berth(["domains:add", "admin.example.com", "--process", "admin-web"])).stdout, /Added admin.example.com to admin-web/);
  t.regex((await berth(["domains"])).stdout, /admin\.example\.com\s+admin-web\s+custom/);
  t.is((await berth(["domains:remove", "admin.example.com"])).code, ExitCode.ok);

  t.regex((await berth(["autoscale:set", "web", "--min", "3", "--max", "8", "--cpu-percent", "75"])).stdout, /between 3 and 8 replicas at 75%/);
  t.regex((await berth(["autoscale:list"])).stdout, /web\s+3\s+8\s+75%/);
  t.is((await berth(["autoscale:unset", "web"])).code, ExitCode.ok);
  t.is((await berth(["autoscale:list"])).stdout, "No autoscale rules.\n");

  t.regex((await berth(["ps"])).stdout, /shop-web-1\s+web/);
  t.regex((await berth(["ps:restart", "web", "--detach"])).stdout, /Restarting web/);
  t.is((await berth(["logs", "--type", "web", "-n", "5"])).stdout.split("\n").filter(Boolean).length, 2);
  t.regex((await berth(["apps:info"])).stdout, /=== shop\nTeam:\s+acme/);

  const refused = await berth(["apps:destroy"]);
  t.is(refused.code, ExitCode.usage);
  t.true(h.scheduler.apps.has("shop"));
  t.is((await berth(["apps:destroy", "--confirm", "shop"])).code, ExitCode.ok);
  t.false(h.scheduler.apps.has("shop"));
});

test("deploy uploads the demo app in chunks, follows the rollout on the real platform and exits 0; a release that never gets healthy exits 5", async (t) => {
  const h = await startPlatformHarness(t);
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token });
  // Before the first deploy there is no release to roll out: the values wait for that deploy.
  const early = await berth(["config:set", "GREETING=hi", "--app", "shop"]);
  t.is(early.code, ExitCode.ok, early.stderr);
  t.is(early.stdout, "Set GREETING: no release yet, the values apply at the first deploy\n");
  t.is((await berth(["config:unset", "GREETING", "--app", "shop"])).stdout, "Unset GREETING: no release yet, the values apply at the first deploy\n");
  const deployed = await berth(["deploy", DEMO_DIR, "--app", "shop", "--description", "first"]);
  t.is(deployed.code, ExitCode.ok, deployed.stderr);
  t.regex(
    deployed.stderr,
    /^Uploading .*\nReleased v1; rolling out \(\S+\):\n.*rollout of v1 started.*release phase succeeded.*\| migration done\n.*healthy.*v1 is live/s,
  );
  t.is(deployed.stdout, "Deployed v1 to shop\nv1 live: 0 requests during the rollout, 0 failed\n");
  t.regex((await berth(["releases", "--app", "shop"])).stdout, /v1\s+succeeded\s+-\s+first\s.*\s0 requests, 0 failed\s+-\n/);

  // logs -f keeps streaming until Ctrl-C, which ends it with exit 0.
  const interrupt = new AbortController();
  const followed = await berth(["logs", "-f", "--type", "release", "--app", "shop"], {
    signal: interrupt.signal,
    onStdout: (text) => {
      if (text.includes("migration done")) interrupt.abort();
    },
  });
  t.is(followed.code, ExitCode.ok, followed.stderr);
  t.regex(followed.stdout, /shop-release\S*: migration done\n/);

  const broken = appDir(t, "web: node server.js\n");
  writeFileSync(join(broken, "server.js"), "setInterval(() => {}, 1000);\n");
  const rolledBack = await berth(["deploy", broken, "--app", "shop", "--json"]);
  t.is(rolledBack.code, ExitCode.rolloutFailed, rolledBack.stderr);
  t.regex(rolledBack.stderr, /^berth: deploy of v2 (rolled back|failed)/m);
  const json = JSON.parse(rolledBack.stdout);
  t.is(json.release.version, 2);
  t.not(json.rollout.state, "ROLLOUT_STATE_SUCCEEDED");
  // Every command that starts a rollout follows it as deploy does.
  const configured = await berth(["config:set", "MODE=live", "--app", "shop"]);
  t.is(configured.code, ExitCode.ok, configured.stderr);
  t.regex(configured.stderr, /^Released v3; rolling out \(\S+\):\n.*v3 is live.*\n.*traffic counted/s);
  t.is(configured.stdout, "Set MODE in v3 of shop\nv3 live: 0 requests during the rollout, 0 failed\n");
  const restarted = await berth(["ps:restart", "web", "--app", "shop"]);
  t.is(restarted.code, ExitCode.ok, restarted.stderr);
  t.regex(restarted.stdout, /^Restarted web \(v3\)\nv3 live: 0 requests during the rollout, 0 failed\n$/);
  const resized = await berth(["pods:type", "web=standard-2x", "--app", "shop"]);
  t.is(resized.code, ExitCode.ok, resized.stderr);
  t.regex(resized.stderr, /resizing web/);
  t.regex(resized.stdout, /\nResized web \(v3\)\nv3 live: 0 requests during the rollout, 0 failed\n$/);
  const detached = await berth(["deploy", DEMO_DIR, "--app", "shop", "--detach"]);
  t.is(detached.code, ExitCode.ok, detached.stderr);
  t.regex(detached.stdout, /Released v4; rollout \S+ continues in the background/);
});

test("a bad Procfile or directory is refused before anything is uploaded", async (t) => {
  const h = await startApiHarness(t);
  const { token, clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token });
  const before = mutatingCalls(h.scheduler.log).length;
  const badProcfile = await berth(["deploy", appDir(t, "web node server.js\n"), "--app", "shop"]);
  t.is(badProcfile.code, ExitCode.failed);
  t.is(badProcfile.stderr, 'berth: Procfile: line 1: expected "<type>: <command>", got "web node server.js"\n');
  const missingDir = await berth(["deploy", "/nonexistent/dir", "--app", "shop"]);
  t.is(missingDir.code, ExitCode.failed);
  t.is(mutatingCalls(h.scheduler.log).length, before);
});

test("errors are one line with a reliable exit code; every command has --help", async (t) => {
  const h = await startApiHarness(t);
  const { token } = await h.team("acme");
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token });
  const notFound = await berth(["pods", "--app", "ghost"]);
  t.deepEqual([notFound.code, notFound.stderr], [ExitCode.failed, 'berth: not found: app "ghost" not found\n']);
  const invalid = await berth(["pods:scale", "Web=1", "--app", "ghost"]);
  t.deepEqual(
    [invalid.code, invalid.stderr],
    [ExitCode.failed, "berth: invalid argument: replicas[Web]: must be lowercase letters, digits and dashes, starting and ending with a letter or digit\n"],
  );
  const noApp = await berth(["pods"]);
  t.is(noApp.code, ExitCode.usage);
  t.regex(noApp.stderr, /name the app with --app/);
  t.is((await berth(["frobnicate"])).code, ExitCode.usage);
  t.is((await berth(["pods:scale", "web=three", "--app", "x"])).code, ExitCode.usage);
  t.is((await berth(["teams:create", "other"])).code, ExitCode.auth, "a team token may not create teams");
  const overview = await berth(["--help"]);
  t.is(overview.code, ExitCode.ok);
  for (const name of ["login", "deploy", "pods:scale", "logs", "autoscale:set", "domains:add", "rollback"]) {
    t.true(overview.stdout.includes(`  ${name} `), name);
    const help = await berth([name, "--help"]);
    t.is(help.code, ExitCode.ok, name);
    t.true(help.stdout.startsWith(`Usage: berth ${name}`), name);
  }
});

test("rtc shows the TURN gateways, rtc:credentials prints iceServers JSON, rtc:rotate rotates", async (t) => {
  const h = await startApiHarness(t);
  const { token } = await h.team("acme");
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token, BERTH_APP: "shop" });
  t.is((await berth(["apps:create", "shop"])).code, ExitCode.ok);
  const allocator = createInternalClient(TurnAllocatorService, { baseUrl: h.config.peers.turnAllocator, token: INTERNAL_TOKEN });
  const exposure = (await allocator.ensureAllocation({ team: "acme", app: "shop", processType: "sfu-rtc", replicas: 2 })).allocation!.exposure!;

  const listed = await berth(["rtc"]);
  t.is(listed.code, ExitCode.ok, listed.stderr);
  t.regex(
    listed.stdout,
    new RegExp(`\\nsfu-rtc\\s+${exposure.turnHostname}:${exposure.port}\\s+berth\\.localhost\\s+${exposure.replicaHostnames.join(", ")}\\s+\\d+s\\s+-`),
  );

  const minted = await berth(["rtc:credentials", "sfu-rtc", "--ttl", "1h", "--user", "alice"]);
  t.is(minted.code, ExitCode.ok, minted.stderr);
  const { iceServers } = JSON.parse(minted.stdout) as { iceServers: { urls: string[]; username?: string; credential?: string }[] };
  t.deepEqual(iceServers[0], { urls: [`stun:${exposure.turnHostname}:${exposure.port}`] });
  t.regex(iceServers[1]!.username!, /^\d+:alice$/);
  t.true(Number(iceServers[1]!.username!.split(":")[0]) - Date.now() / 1000 > 3590);
  t.truthy(iceServers[1]!.credential);

  const rotated = await berth(["rtc:rotate", "sfu-rtc"]);
  t.regex(rotated.stdout, /^Rotated the TURN secret of sfu-rtc; the previous one stays valid until \d{4}-\d\d-\d\dT/);
  t.is((await berth(["rtc:credentials", "sfu-rtc", "--ttl", "1x"])).code, ExitCode.usage);
  const refused = await berth(["rtc:credentials", "worker"]);
  t.is(refused.code, ExitCode.failed);
  t.regex(refused.stderr, /process_type: "worker" is not an rtc process/);
});

test("apps:destroy of an app whose worker ignores SIGTERM says its replicas are stopping and exits 0, a second one is refused; the app goes once the worker is killed", async (t) => {
  // The API gives each peer call 4 s; the worker holds its stop for the 8 s grace period.
  const h = await startPlatformHarness(t, { schedulerEnv: { BERTH_SCHEDULER_STOP_GRACE_MS: "8000" }, callTimeoutMs: 4000 });
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const stubborn = `node -e "process.on('SIGTERM',()=>console.log('ignoring SIGTERM')); setInterval(()=>{},1000)"`;
  const deployed = await deployDirectory(clients, "shop", { procfile: `web: node web.js\nworker: ${stubborn}\n` });
  t.is((await followRolloutThroughApi(clients, "shop", deployed.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  await clients.formation.scale({ app: "shop", replicas: { worker: 1 } });
  await eventually(async () => {
    const { replicas } = await clients.formation.listReplicas({ app: "shop", processType: "worker" });
    return replicas.some((replica) => replica.ready) ? true : undefined;
  }, "the worker running");

  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token });
  const destroyed = await berth(["apps:destroy", "--app", "shop", "--confirm", "shop"]);
  t.is(destroyed.code, ExitCode.ok, destroyed.stderr);
  t.is(
    destroyed.stdout,
    "Destroying shop: its routes are gone and its replicas are stopping (SIGTERM, then SIGKILL after the grace period); it disappears from `berth apps` once they have\n",
  );
  t.regex((await berth(["apps:info", "--app", "shop"])).stdout, /Status:\s+being deleted/);
  const again = await berth(["apps:destroy", "--app", "shop", "--confirm", "shop"]);
  t.is(again.code, ExitCode.failed);
  t.regex(again.stderr, /app "shop" is being deleted: its replicas are still stopping/);
  await eventually(async () => ((await berth(["apps"])).stdout.includes("shop") ? undefined : true), "shop gone from the app list");
});

test("deploy --image sends the image and the --procfile to the API, says what the release was pinned to, and refuses a directory with it", async (t) => {
  const h = await startApiHarness(t);
  const { token } = await h.team("acme");
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token, BERTH_APP: "shop" });
  t.is((await berth(["apps:create", "shop"])).code, ExitCode.ok);
  h.router.knowApp("shop");
  const dir = tempDir(t, "berth-cli-procfile-");
  const procfile = join(dir, "Procfile.k8s");
  writeFileSync(procfile, "web: ./serve --port $PORT\nworker: ./work\n");

  const deployed = await berth(["deploy", "--image", "ghcr.io/acme/shop:v1", "--procfile", procfile, "--description", "from CI"]);
  t.is(deployed.code, ExitCode.ok, deployed.stderr);
  t.is(deployed.stdout, "Deployed v1 to shop\n");
  t.regex(
    deployed.stderr,
    /Image ghcr\.io\/acme\/shop:v1: the registry reported no digest; the release is pinned to what its first pod pulls/,
    "the stand-in scheduler resolves no digest",
  );
  const release = h.scheduler.apps.get("shop")!.releases[0]!;
  t.deepEqual(release.artifact?.source, { case: "image", value: "ghcr.io/acme/shop:v1" });
  t.deepEqual(
    release.processes.map((process) => [process.processType, process.command]),
    [
      ["web", "./serve --port $PORT"],
      ["worker", "./work"],
    ],
  );
  t.is(release.description, "from CI");

  const both = await berth(["deploy", dir, "--image", "ghcr.io/acme/shop:v1"]);
  t.is(both.code, ExitCode.usage);
  t.regex(both.stderr, /a directory or --image, not both/);
  const procfileAlone = await berth(["deploy", dir, "--procfile", procfile]);
  t.is(procfileAlone.code, ExitCode.usage);
  const missing = await berth(["deploy", "--image", "ghcr.io/acme/shop:v1", "--procfile", join(dir, "nope")]);
  t.is(missing.code, ExitCode.failed);
  t.regex(missing.stderr, /--procfile .*nope: no such file/);
  t.is(h.scheduler.apps.get("shop")!.releases.length, 1, "refused commands release nothing");
});

test("deploy --image on a local-engine platform fails with the platform's FAILED_PRECONDITION and releases nothing", async (t) => {
  const h = await startPlatformHarness(t);
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token, BERTH_APP: "shop" });
  const refused = await berth(["deploy", "--image", "nginx:1.27"]);
  t.is(refused.code, ExitCode.failed);
  t.regex(refused.stderr, /^berth: failed precondition: .*local engine.*BERTH_ENGINE=kubernetes/);
  t.deepEqual((await clients.apps.listReleases({ app: "shop" })).releases, []);
});
