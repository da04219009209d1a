import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import { fieldViolationsOf } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import { TrustMode } from "@berth/proto/netpol/v1/netpol";
import { startNetpolHarness } from "./support/netpol-harness.js";

const apps = {
  "grpc-app": { team: "acme", processes: ["web", "grpc-tcp", "worker"] },
  "api-app": { team: "acme", processes: ["web", "worker"] },
  portal: { team: "globex", processes: ["web", "admin-tcp"] },
};

const failure = async (call: Promise<unknown>) =>
  ConnectError.from(
    await call.then(
      () => undefined,
      (error: unknown) => error,
    ),
  );

test("Explain answers from the local compilation, naming the rule or the missing grant", async (t) => {
  const h = await startNetpolHarness(t, apps);
  const { client } = h;
  const denied = (await client.explain({ fromApp: "api-app", toApp: "grpc-app", toProcessType: "grpc-tcp" })).verdict!;
  t.false(denied.allowed);
  t.true(denied.reasons.some((reason) => reason.includes("berth apps:trust:add api-app --app grpc-app")));
  await client.setTrust({ app: "grpc-app", trustedApps: ["api-app"], mode: TrustMode.REPLACE });
  const allowed = (await client.explain({ fromApp: "api-app", fromProcessType: "worker", toApp: "grpc-app", toProcessType: "grpc-tcp" })).verdict!;
  t.true(allowed.allowed);
  t.deepEqual(allowed.policies, ["grpc-app.tcp:api-app"]);
  // The stand-in scheduler gives grpc-app's second process (grpc-tcp) port 5001.
  t.true(allowed.reasons[0]!.includes("port 5001"));
  t.false((await client.explain({ fromApp: "api-app", toApp: "grpc-app", toProcessType: "grpc-tcp", port: 80 })).verdict!.allowed);
  t.false(
    (await client.explain({ fromApp: "grpc-app", toApp: "api-app", toProcessType: "web" })).verdict!.allowed,
    "directional, and web only from the ingress",
  );
  t.false((await client.explain({ fromApp: "portal", toApp: "grpc-app", toProcessType: "grpc-tcp" })).verdict!.allowed);

  t.is((await failure(client.explain({ fromApp: "ghost", toApp: "grpc-app", toProcessType: "grpc-tcp" }))).code, Code.NotFound);
  t.is((await failure(client.explain({ fromApp: "api-app", toApp: "grpc-app", toProcessType: "other-tcp" }))).code, Code.NotFound);
  t.deepEqual(
    fieldViolationsOf(await failure(client.explain({ fromApp: "Api", fromProcessType: "-", toApp: "grpc-app", toProcessType: "", port: 70000 }))).map(
      (v) => v.field,
    ),
    ["port", "from_app", "from_process_type", "to_process_type"],
  );

  const matrix = (await client.getMatrix({ team: "acme" })).entries;
  t.deepEqual(
    matrix.filter((entry) => entry.allowed).map((entry) => `${entry.fromApp} -> ${entry.toApp}/${entry.toProcessType}:${entry.port}`),
    ["api-app -> grpc-app/grpc-tcp:5001", "grpc-app -> grpc-app/grpc-tcp:5001"],
  );
  t.is(matrix.length, 2 * (3 + 2));

  const plan = await client.planPolicies({ team: "acme", dryRun: true });
  t.false(plan.applied);
  t.true(plan.changes.every((change) => change.action === "create" && change.namespace === "berth-apps-acme"));
  t.is(
    JSON.parse(plan.changes.find((change) => change.name === "grpc-app.tcp")!.objectJson).spec.ingress[0].from[0].podSelector.matchExpressions[0].values.join(),
    "grpc-app,api-app",
  );
  t.is((await failure(client.planPolicies({ team: "acme" }))).code, Code.FailedPrecondition);
});

test("on the kubernetes engine a trust change is applied to the cluster at once, and PlanPolicies shows the diff", async (t) => {
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  const h = await startNetpolHarness(t, apps, { BERTH_ENGINE: "kubernetes" }, api.kubeConfig());
  const names = (namespace: string) => api.objects({ kind: "NetworkPolicy", namespace }).map((object) => (object.metadata as { name: string }).name);
  await eventually(() => (names("berth-apps-acme").length === 5 && names("berth-apps-globex").length === 4) || undefined, "both teams' policies");
  t.deepEqual(names("berth-apps-acme"), ["api-app.web", "berth.default-deny", "berth.egress", "grpc-app.tcp", "grpc-app.web"]);

  const dryRun = await h.client.planPolicies({ team: "acme", dryRun: true });
  t.true(dryRun.changes.every((change) => change.action === "unchanged"));

  await h.client.setTrust({ app: "grpc-app", trustedApps: ["api-app"], mode: TrustMode.REPLACE });
  const trusted = () => JSON.stringify(api.objects({ kind: "NetworkPolicy", name: "grpc-app.tcp" })[0]).includes('"api-app"');
  await eventually(() => trusted() || undefined, "the trust in the policies");
  const verdict = (await h.client.explain({ fromApp: "api-app", toApp: "grpc-app", toProcessType: "grpc-tcp" })).verdict!;
  t.true(verdict.allowed);
  t.deepEqual(verdict.policies, ["berth.egress", "grpc-app.tcp"]);

  h.scheduler.deleteApp("api-app");
  await eventually(() => (!names("berth-apps-acme").includes("api-app.web") && !trusted()) || undefined, "the deleted app's policies gone");
  t.deepEqual(names("berth-apps-acme"), ["berth.default-deny", "berth.egress", "grpc-app.tcp", "grpc-app.web"]);
});
