import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { startPlatformHarness } from "@berth/api/testing";
import { eventually } from "@berth/kit/testing";
import { ExitCode } from "../src/exit-codes.js";
import { berthRunner, tempDir } from "./support/berth-runner.js";

const SERVER = `require("node:http").createServer((request, response) => response.end("ok")).listen(Number(process.env.PORT));\n`;

test("deploy --canary follows the canary to its promotion; canary shows one under way, canary:abort rolls it back, releases keep the outcome", async (t) => {
  const h = await startPlatformHarness(t);
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const berth = berthRunner(t, { BERTH_API_URL: h.api.url, BERTH_TOKEN: token, BERTH_APP: "shop" });
  const dir = tempDir(t, "berth-cli-canary-");
  writeFileSync(join(dir, "Procfile"), "web: node server.js\n");
  writeFileSync(join(dir, "server.js"), SERVER);
  const first = await berth(["deploy", dir]);
  t.is(first.code, ExitCode.ok, first.stderr);

  const none = await berth(["canary:promote"]);
  t.is(none.code, ExitCode.failed);
  t.regex(none.stderr, /^berth: failed precondition: app "shop" has no canary under way/);
  const shortInterval = await berth(["deploy", dir, "--canary", "10", "--interval", "500ms"]);
  t.is(shortInterval.code, ExitCode.failed);
  t.regex(shortInterval.stderr, /invalid argument: .*canary\.interval_ms/);

  const promoted = await berth(["deploy", dir, "--canary", "50", "--step", "50", "--interval", "1s", "--max-failure-rate", "0.5"]);
  t.is(promoted.code, ExitCode.ok, promoted.stderr);
  t.regex(
    promoted.stderr,
    /as a canary: 50 % first, \+50 % every 1 s.*canary - v2 is healthy: 50 % of web requests go to it.*canary promoted \(PROMOTED\).*v2 is live/s,
  );
  t.regex(promoted.stdout, /^canary promoted \(PROMOTED\): \d+ requests to v2, 0 failed, 0 5xx\nDeployed v2 to shop\n/);

  const started = await berth(["deploy", dir, "--canary", "10", "--interval", "10m", "--detach"]);
  t.is(started.code, ExitCode.ok, started.stderr);
  const shown = await eventually(async () => {
    const result = await berth(["canary"]);
    return result.stdout.includes("running") ? result.stdout : undefined;
  }, "the canary running");
  t.regex(shown, /^v3 over v2 \(\S+\): running at 10 % \(\+10 % every 600 s while at most 1 % fail\)\n/);
  const aborted = await berth(["canary:abort"]);
  t.is(aborted.code, ExitCode.ok, aborted.stderr);
  t.regex(
    aborted.stdout,
    /^v3 over v2 \(\S+\): aborted by hand \(ABORTED_BY_HAND\): \d+ requests to v3( so far)?, 0 failed, 0 5xx\naborted by hand \(canary:abort\)\n$/,
  );

  const releases = await berth(["releases"]);
  t.regex(releases.stdout, /\nv3\s+rolled back \(ABORTED_BY_HAND\)\s.*\saborted by hand \(ABORTED_BY_HAND\): \d+ requests to v3/);
  t.regex(releases.stdout, /\nv2\s+succeeded\s.*\spromoted \(PROMOTED\): \d+ requests to v2, 0 failed, 0 5xx\n/);
  t.regex(releases.stdout, /\nv1\s+succeeded\s.*\s-\n/);
});

test("canary options are checked before anything is uploaded", async (t) => {
  const berth = berthRunner(t, { BERTH_API_URL: "http://127.0.0.1:1", BERTH_TOKEN: "unused", BERTH_APP: "shop" });
  const dir = tempDir(t, "berth-cli-canary-");
  const refusals: [string[], RegExp][] = [
    [["--canary", "0"], /--canary must be between 1 and 100, got 0/],
    [["--canary", "101"], /--canary must be between 1 and 100, got 101/],
    [["--canary", "10", "--step", "0"], /--step must be between 1 and 100, got 0/],
    [["--canary", "10", "--interval", "soon"], /--interval takes a duration like 500ms, 5s or 2m/],
    [["--canary", "10", "--max-failure-rate=-1"], /--max-failure-rate must be a percentage from 0 to 100/],
    [["--step", "5", "--interval", "1s"], /--step, --interval go with --canary/],
  ];
  for (const [options, message] of refusals) {
    const result = await berth(["deploy", dir, ...options]);
    t.is(result.code, ExitCode.usage, options.join(" "));
    t.regex(result.stderr, message);
  }
});
