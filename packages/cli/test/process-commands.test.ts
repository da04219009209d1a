import test from "ava";
import { ExitCode } from "../src/exit-codes.js";
import { commandLineOf, parseDuration } from "../src/commands/processes.js";
import { DEMO_DIR, startPlatformHarness } from "@berth/api/testing";
import { berthRunner } from "./support/berth-runner.js";

test("durations and command lines are read as a user types them", (t) => {
  t.is(parseDuration("interval", "1s"), 1000);
  t.is(parseDuration("interval", "250ms"), 250);
  t.is(parseDuration("timeout", "2m"), 120_000);
  t.is(parseDuration("timeout", "5"), 5000);
  t.throws(() => parseDuration("interval", "1h"), { message: /--interval takes a duration like 500ms, 5s or 2m, got "1h"/ });
  t.is(commandLineOf(["npm run a && npm run b"]), "npm run a && npm run b");
  t.is(commandLineOf(["node", "scripts/migrate.js", "--to", "v3"]), "node scripts/migrate.js --to v3");
  t.is(commandLineOf(["echo", "it's $HOME", ""]), "echo 'it'\\''s $HOME' ''");
});

test("run, ps:exec, ps:describe and healthchecks through the CLI on the real platform", async (t) => {
  const h = await startPlatformHarness(t);
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token, BERTH_APP: "shop" });
  t.is((await berth(["config:set", "SECRET_TOKEN=s3cr3t-value", "HEALTH_DELAY_MS=1500"])).code, ExitCode.ok);
  const deployed = await berth(["deploy", DEMO_DIR]);
  t.is(deployed.code, ExitCode.ok, deployed.stderr);

  // run: output as printed, on the stream it was printed to, and the command's own exit code.
  const run = await berth(["run", "--", "sh", "-c", 'echo "token is $(printf %s "$SECRET_TOKEN" | wc -c) long"; echo to-stderr >&2; exit 42']);
  t.is(run.code, 42, run.stderr);
  t.is(run.stdout, "token is 12 long\n");
  t.regex(run.stderr, /^Running as shop-run-[0-9a-f]{8}\.\.\.\nto-stderr\n$/);
  t.is((await berth(["run", "--", "ls -h web.js"])).stdout, "web.js\n", "-h after -- belongs to the command");
  const missing = await berth(["run"]);
  t.is(missing.code, ExitCode.usage);

  // Ctrl-C ends a run (exit 130) and the command with it.
  const interrupt = new AbortController();
  const interrupted = await berth(["run", "--", "echo ready; sleep 30"], { signal: interrupt.signal, onStdout: () => interrupt.abort() });
  t.is(interrupted.code, 130);

  const ps = JSON.parse((await berth(["ps", "--type", "web", "--json"])).stdout) as { name: string }[];
  const replica = ps[0]!.name;
  const exec = await berth(["ps:exec", replica, "--", "echo $BERTH_REPLICA_NAME; exit 3"]);
  t.is(exec.code, 3);
  t.is(exec.stdout, `${replica}\n`);
  const unknown = await berth(["ps:exec", "shop-web-v9-none", "--", "true"]);
  t.is(unknown.code, ExitCode.failed);
  t.regex(unknown.stderr, /not found: app "shop" has no replica "shop-web-v9-none"/);

  const described = await berth(["ps:describe", replica]);
  t.is(described.code, ExitCode.ok, described.stderr);
  t.regex(described.stdout, /^command\s+node web\.js$/m);
  t.regex(described.stdout, /^environment\s+.*\bSECRET_TOKEN\b/m);
  t.regex(described.stdout, /^health\s+GET \/ every/m);
  t.false(described.stdout.includes("s3cr3t-value"), "ps:describe never prints a config value");
  t.false((await berth(["ps:describe", replica, "--json"])).stdout.includes("s3cr3t-value"));

  // healthchecks:set is a new release whose rollout is followed like a deploy; /health passes 1.5 s after a start.
  const set = await berth(["healthchecks:set", "web", "--path", "/health", "--interval", "200ms", "--start-timeout", "20s"]);
  t.is(set.code, ExitCode.ok, set.stderr);
  t.regex(set.stderr, /Released v\d+; rolling out/);
  t.regex(set.stdout, /^Health check of web changed in v(\d+) of shop\nv\1 live: 0 requests during the rollout, 0 failed\n$/);
  const shown = await berth(["healthchecks"]);
  t.regex(shown.stdout, /^web\s+GET \/health\s+200ms\s+\S+\s+20s/m);
  t.regex((await berth(["releases"])).stdout, /Health check of web: path \/health, interval 200 ms, startTimeout 20000 ms/);
  const badOption = await berth(["healthchecks:set", "web", "--interval", "soon"]);
  t.is(badOption.code, ExitCode.usage);
  const nothing = await berth(["healthchecks:set", "web"]);
  t.is(nothing.code, ExitCode.usage);
  const refused = await berth(["healthchecks:set", "worker", "--path", "/up"]);
  t.is(refused.code, ExitCode.failed);
  t.regex(refused.stderr, /health\.path/);
  const unset = await berth(["healthchecks:unset", "web", "--detach"]);
  t.is(unset.code, ExitCode.ok, unset.stderr);
  t.regex(unset.stdout, /continues in the background/);
});
