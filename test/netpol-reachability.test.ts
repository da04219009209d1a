// Trust and reachability on the whole platform (real scheduler, router,
// netpol and API): several apps in two teams, asked through the public
// TrustService's Explain and GetMatrix and through the `berth` CLI.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { runCli } from "../packages/cli/src/run-cli.js";
import { DEMO_DIR, deployDirectory, startPlatformHarness } from "@berth/api/testing";
import { eventually } from "@berth/kit/testing";

// Processes from the demo app's scripts, under the names each app needs.
const PROCFILES: Record<string, string> = {
  "grpc-app": "web: node web.js\ngrpc-tcp: node api-tcp.js\nworker: node worker.js\n",
  "api-app": "web: node web.js\nworker: node worker.js\n",
  "billing-app": "billing-tcp: node api-tcp.js\n",
  portal: "web: node web.js\nadmin-tcp: node api-tcp.js\n",
};

const codeOf = async (call: Promise<unknown>) =>
  ConnectError.from(
    await call.then(
      () => undefined,
      (error: unknown) => error,
    ),
  ).code;

test("reachability through the public API is exactly what the trust lists imply, and nothing more", async (t) => {
  const h = await startPlatformHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  const teamOf = (app: string) => (app === "portal" ? globex : acme);
  for (const app of Object.keys(PROCFILES)) {
    const { clients } = teamOf(app);
    await clients.apps.createApp({ name: app });
    await deployDirectory(clients, app, { dir: DEMO_DIR, procfile: PROCFILES[app] });
  }
  const trust = acme.clients.trust;
  // netpol learns the processes from the scheduler's stream.
  await eventually(async () => ((await trust.getMatrix({})).entries.length === 3 * (3 + 2 + 1) ? true : undefined), "acme's processes known to netpol");

  t.deepEqual((await trust.setTrust({ app: "grpc-app", trustedApps: ["api-app"] })).trust?.trustedApps, ["api-app"]);
  t.deepEqual((await trust.addTrust({ app: "billing-app", trustedApps: ["grpc-app"] })).trust?.trustedApps, ["grpc-app"]);
  await globex.clients.trust.setTrust({ app: "portal", trustedApps: [] });

  const open = (await trust.getMatrix({})).entries.filter((entry) => entry.allowed).map((entry) => `${entry.fromApp} -> ${entry.toApp}/${entry.toProcessType}`);
  t.deepEqual(open, [
    "api-app -> grpc-app/grpc-tcp",
    "billing-app -> billing-app/billing-tcp",
    "grpc-app -> billing-app/billing-tcp",
    "grpc-app -> grpc-app/grpc-tcp",
  ]);
  const globexMatrix = (await globex.clients.trust.getMatrix({})).entries;
  t.deepEqual(new Set(globexMatrix.map((entry) => entry.fromApp)), new Set(["portal"]), "a team's matrix holds its own apps only");

  const explain = async (fromApp: string, toApp: string, toProcessType: string, fromProcessType = "") =>
    (await trust.explain({ fromApp, fromProcessType, toApp, toProcessType })).verdict!;
  const granted = await explain("api-app", "grpc-app", "grpc-tcp", "worker");
  t.true(granted.allowed);
  t.deepEqual(granted.policies, ["grpc-app.tcp:api-app"]);
  const reverse = await explain("grpc-app", "api-app", "web");
  t.false(reverse.allowed, "trust is directional");
  t.true(reverse.reasons.some((reason) => reason.includes("only the ingress data plane")));
  const worker = await explain("api-app", "grpc-app", "worker");
  t.false(worker.allowed);
  t.true(worker.reasons.some((reason) => reason.includes("nothing on the network reaches it")));
  const missing = await explain("api-app", "billing-app", "billing-tcp");
  t.false(missing.allowed);
  t.true(missing.reasons.some((reason) => reason.includes("berth apps:trust:add api-app --app billing-app")));

  // No cross-team path, and no leak of the other team's apps.
  t.is(await codeOf(trust.explain({ fromApp: "api-app", toApp: "portal", toProcessType: "admin-tcp" })), Code.NotFound);
  t.is(await codeOf(globex.clients.trust.explain({ fromApp: "portal", toApp: "grpc-app", toProcessType: "grpc-tcp" })), Code.NotFound);
  t.is(await codeOf(trust.setTrust({ app: "grpc-app", trustedApps: ["portal"] })), Code.NotFound);
  t.is(await codeOf(trust.setTrust({ app: "grpc-app", trustedApps: ["no-such-app"] })), Code.NotFound);
  const invalid = ConnectError.from(await t.throwsAsync(trust.setTrust({ app: "grpc-app", trustedApps: ["grpc-app", "Not_A_Name"] })));
  t.deepEqual(
    fieldViolationsOf(invalid).map((violation) => violation.field),
    ["trusted_apps[0]", "trusted_apps[1]"],
  );
  t.deepEqual((await trust.getTrust({ app: "grpc-app" })).trust?.trustedApps, ["api-app"], "refused requests changed nothing");

  // The CLI says the same.
  const berth = async (...argv: string[]) => {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      env: { BERTH_API_URL: h.api.url, BERTH_TOKEN: acme.token, BERTH_CONFIG_DIR: "/nonexistent" },
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      readStdin: async () => "",
    });
    return { code, stdout, stderr };
  };
  t.is((await berth("apps:trust", "--app", "grpc-app")).stdout, "grpc-app trusts api-app: they may reach its *-tcp processes.\n");
  t.is(
    (await berth("apps:trust", "api-app,billing-app", "--app", "grpc-app")).stdout,
    "grpc-app trusts api-app, billing-app: they may reach its *-tcp processes.\n",
  );
  t.is((await berth("apps:trust:remove", "billing-app", "--app", "grpc-app")).code, 0);
  const explained = await berth("netpol:explain", "api-app", "grpc-app/grpc-tcp");
  t.regex(explained.stdout, /^ALLOWED: api-app -> grpc-app\/grpc-tcp\n {2}- rule grpc-app\.tcp:api-app lets app api-app into grpc-app\/grpc-tcp/);
  t.regex((await berth("netpol:explain", "grpc-app", "api-app/worker")).stdout, /^DENIED/);
  t.is((await berth("netpol:explain", "grpc-app", "api-app")).code, 2, "a target without its process is a usage error");
  t.regex((await berth("netpol:matrix", "--allowed")).stdout, /api-app\s+grpc-app\/grpc-tcp\s+\S+\s+allowed/);
  t.is((await berth("apps:trust", "api-app", "--clear", "--app", "grpc-app")).code, 2);
  t.is(
    (await berth("apps:trust", "--clear", "--app", "grpc-app")).stdout,
    "Nobody is trusted: the *-tcp processes of grpc-app are reachable only from its own processes.\n",
  );

  // Deleting an app takes it off every trust list, in both directions.
  await trust.setTrust({ app: "grpc-app", trustedApps: ["api-app", "billing-app"] });
  await trust.setTrust({ app: "billing-app", trustedApps: ["api-app", "grpc-app"] });
  await acme.clients.apps.deleteApp({ app: "api-app" });
  t.deepEqual((await trust.getTrust({ app: "grpc-app" })).trust?.trustedApps, ["billing-app"]);
  t.deepEqual((await trust.getTrust({ app: "billing-app" })).trust?.trustedApps, ["grpc-app"]);
});
