// `BERTH_ENGINE=kubernetes npm start` against a kubeconfig: the fake cluster
// here, running in the test, is the cluster the whole platform deploys to.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { createFakeKubeApi, kubectlFor } from "@berth/fake-kube-api";
import { processObjectName, teamNamespace } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import { freePort, platformEnvironment, waitServing } from "./support/platform.js";
import { publicApi } from "./support/public-api.js";

type Json = Record<string, any>;
const root = fileURLToPath(new URL("..", import.meta.url));
const ADMIN_TOKEN = "kubernetes-platform-test-admin-token-0123";

test("BERTH_ENGINE=kubernetes npm start deploys an image to the cluster of its kubeconfig: release Job, config Secret and Deployments in the team's namespace, rolled out", async (t) => {
  const api = await createFakeKubeApi();
  const kubectl = kubectlFor(api);
  const dataDir = mkdtempSync(join(tmpdir(), "berth-kubernetes-"));
  const { env, urls } = await platformEnvironment(dataDir);
  Object.assign(env, {
    BERTH_ENGINE: "kubernetes",
    KUBECONFIG: kubectl.env.KUBECONFIG!,
    BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
    BERTH_ROUTER_HTTP_PORT: String(await freePort()),
    BERTH_ROUTER_HTTPS_PORT: String(await freePort()),
  });
  const child = spawn("npm", ["start"], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const output: string[] = [];
  const keep = (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter(Boolean));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
    await api.close();
    kubectl.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });
  try {
    await waitServing(urls.api, child, 120_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${output.slice(-30).join("\n")}`);
  }

  const admin = publicApi(urls.api, ADMIN_TOKEN);
  await admin.teams.createTeam({ name: "acme" });
  const acme = publicApi(urls.api, (await admin.teams.createToken({ team: "acme", description: "kubernetes platform test" })).secret);
  await acme.apps.createApp({ name: "shop" });
  const procfile = "web: node web.js\nworker: node worker.js\nrelease: node migrate.js\n";
  await acme.apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "registry.example.com/acme/shop:v1" } }, procfile });
  const namespace = teamNamespace("berth-apps", "acme");
  const app = await eventually(
    async () => {
      const found = (await acme.apps.getApp({ app: "shop" })).app;
      return found?.currentReleaseVersion === 1 ? found : undefined;
    },
    "release v1 live (release Job completed, Deployments rolled out)",
    90_000,
  );
  t.is(app.currentReleaseVersion, 1);
  const rollout = await kubectl.run(["rollout", "status", `deployment/${processObjectName("shop", "web")}`, "-n", namespace, "--timeout=30s"]);
  t.is(rollout.code, 0, rollout.stderr);
  const job = api.objects({ kind: "Job", namespace, name: "shop-release-v1" })[0] as Json;
  t.true(
    job.status.conditions.some((condition: Json) => condition.type === "Complete"),
    "the release Job ran on the cluster",
  );
  const secret = api.objects({ kind: "Secret", namespace, name: "shop-config-v1" })[0] as Json;
  t.truthy(secret, "config lives in the release's Secret");
  t.deepEqual(api.objects({ kind: "Deployment", namespace: "berth-apps" }), [], "nothing of the team's outside its namespace");
  t.false(
    output.some((line) => line.includes('"level":"error"')),
    output.filter((line) => line.includes('"level":"error"')).join("\n"),
  );
});
