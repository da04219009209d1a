// The story on a cluster: the five services with BERTH_ENGINE=kubernetes
// against the fake cluster (real client, real REST protocol), driven only
// through the public API and the berth CLI, checked against what the
// cluster holds and against kubectl.
import { execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { createFakeKubeApi, kubectlFor, pulledImageId } from "@berth/fake-kube-api";
import type { PodBehaviour } from "@berth/fake-kube-api";
import { processObjectName, teamNamespace } from "@berth/kit";
import { CertificateState } from "@berth/proto/type/v1/network";
import { ReplicaState } from "@berth/proto/type/v1/process";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { eventually } from "@berth/kit/testing";
import { freePort, startPlatformProcesses } from "./support/platform.js";
import { followRollout, publicApi } from "./support/public-api.js";

type Json = Record<string, any>;
const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const ADMIN_TOKEN = "kubernetes-story-admin-token-0123456789";
const PROCFILE = "web: node web.js\nadmin-web: node admin.js\nworker: node worker.js\nrelease: node migrate.js\napi-tcp: node tcp.js\n";
const image = (tag: string) => `registry.example.com/acme/shop:${tag}`;
/** Whether a pod runs `tag`: by the tag until the first pod's pull pins the Deployment to the digest the node reports. */
const runs = (pod: Json, tag: string) => [image(tag), pulledImageId(image(tag))].includes(pod.spec.containers[0].image);
/** Replicas start, print a line and become ready; the release Job's pod (restartPolicy Never) keeps the cluster's default: it succeeds. */
const serving = (pod: Json): PodBehaviour | undefined =>
  pod.spec.restartPolicy === "Never" ? undefined : { outcome: "ready", logs: [`${pod.metadata.labels["app.kubernetes.io/component"]} up`] };
const BROKEN_DOMAIN = "broken.example.com";
const kinds = (events: string[]) => events.map((event) => Number(event.split(":")[0]));

test("on a cluster a team deploys an image, sees its pods in ps, scales, adds custom domains (a broken one failing alone), rolls out, deletes and restarts pods, follows logs, has a crash-looping release rolled back, rolls back by hand, and another team sees nothing", async (t) => {
  // Five services, a simulated cluster and a dozen steps: longer than the suite's two minutes, on a loaded machine too.
  t.timeout(480_000);
  const api = await createFakeKubeApi({
    podBehaviour: (pod) => serving(pod as Json),
    // A custom domain whose DNS does not point at the cluster: its ACME order fails.
    certificateIssuance: (dnsNames) =>
      dnsNames.includes(BROKEN_DOMAIN) ? `ACME order failed: DNS problem: NXDOMAIN looking up A for ${BROKEN_DOMAIN}` : undefined,
  });
  const kubectl = kubectlFor(api);
  const platform = await startPlatformProcesses({
    BERTH_ENGINE: "kubernetes",
    KUBECONFIG: kubectl.env.KUBECONFIG!,
    BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
    BERTH_ROUTER_HTTP_PORT: String(await freePort()),
    BERTH_ROUTER_HTTPS_PORT: String(await freePort()),
    BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "10000",
  });
  t.teardown(async () => {
    await platform.stop();
    await api.close();
    kubectl.dispose();
  });
  const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
  const tokens: Record<string, string> = {};
  for (const team of ["acme", "globex"]) {
    await admin.teams.createTeam({ name: team });
    tokens[team] = (await admin.teams.createToken({ team, description: "kubernetes story" })).secret;
  }
  const acme = publicApi(platform.urls.api, tokens.acme!);
  const globex = publicApi(platform.urls.api, tokens.globex!);
  const berth = (args: string[]) =>
    run(process.execPath, [join(root, "packages/cli/bin/berth.js"), ...args, "--app", "shop"], {
      cwd: root,
      env: { ...process.env, BERTH_API_URL: platform.urls.api, BERTH_TOKEN: tokens.acme!, BERTH_CONFIG_DIR: platform.dataDir },
      timeout: 60_000,
    });
  const namespace = teamNamespace("berth-apps", "acme");
  const podsOf = (type: string) =>
    api.objects({ kind: "Pod", namespace, labelSelector: `app.kubernetes.io/name=shop,app.kubernetes.io/component=${type}` }) as Json[];
  const deploy = async (tag: string) => {
    const deployed = await acme.apps.deploy({ app: "shop", artifact: { source: { case: "image", value: image(tag) } }, procfile: PROCFILE });
    return { release: deployed.release!, ...(await followRollout(acme, "shop", deployed.rollout!.id)) };
  };

  // Deploy an image: the release Job runs on the cluster, then the pods become ready, each a step of the rollout.
  await acme.apps.createApp({ name: "shop" });
  const first = await deploy("v1");
  t.is(first.rollout.state, RolloutState.SUCCEEDED, first.rollout.message);
  t.true(kinds(first.events).includes(RolloutEventKind.RELEASE_PHASE_SUCCEEDED));
  t.true(kinds(first.events).indexOf(RolloutEventKind.REPLICA_HEALTHY) < kinds(first.events).indexOf(RolloutEventKind.ROLLOUT_SUCCEEDED));

  t.log("deployed", new Date().toISOString());
  // Scale: ps (the CLI) lists the cluster's pods, ready, in their nodes' zones.
  await acme.formation.scale({ app: "shop", replicas: { web: 2, "admin-web": 1, worker: 1, "api-tcp": 1 } });
  const formation = await eventually(
    async () => {
      const { processes } = await acme.formation.getFormation({ app: "shop" });
      const ready = (type: string, n: number) => processes.find((p) => p.processType === type)?.readyReplicas === n && podsOf(type).length === n;
      return ready("web", 2) && ready("admin-web", 1) && ready("worker", 1) && ready("api-tcp", 1) ? processes : undefined;
    },
    "every scaled type ready",
    90_000,
  );
  t.is(formation.length, 4);
  const ps = JSON.parse((await berth(["ps", "--json"])).stdout) as Json[];
  t.deepEqual(
    ps.map((replica) => replica.name).sort(),
    ["web", "admin-web", "worker", "api-tcp"].flatMap((type) => podsOf(type).map((pod) => pod.metadata.name)).sort(),
    "ps lists the pods the cluster runs",
  );
  t.true(ps.every((replica) => replica.ready && replica.state === "REPLICA_STATE_UP" && /^zone-[abc]$/.test(replica.zone)));
  t.is(new Set(ps.filter((replica) => replica.processType === "web").map((replica) => replica.zone)).size, 2, "two web pods in two zones");
  const table = (await berth(["ps"])).stdout;
  t.regex(table, /^NAME\s+TYPE\s+RELEASE\s+STATE\s+READY\s+RESTARTS\s+AGE\s+ZONE/m);
  // The router got the endpoints: the web processes have their Ingress.
  const ingress = await eventually(
    async () => api.objects({ kind: "Ingress", namespace, name: processObjectName("shop", "web") })[0] as Json | undefined,
    "the web Ingress from the endpoint stream",
  );
  t.true(JSON.stringify(ingress.spec.rules).includes("shop.berth.localhost"));

  t.log("scaled", new Date().toISOString());
  // Custom domains: each hostname gets its Ingress rule and its own TLS secret (its own Certificate), so the one
  // whose DNS does not point at the cluster fails alone and the others are issued.
  for (const hostname of ["shop.example.com", BROKEN_DOMAIN]) await acme.domains.addDomain({ app: "shop", processType: "web", hostname });
  const routed = await eventually(async () => {
    const found = api.objects({ kind: "Ingress", namespace, name: processObjectName("shop", "web") })[0] as Json | undefined;
    return found?.spec.rules.length === 3 ? found : undefined;
  }, "the custom domains' Ingress rules");
  t.deepEqual(routed.spec.rules.map((rule: Json) => rule.host).sort(), ["broken.example.com", "shop.berth.localhost", "shop.example.com"]);
  t.deepEqual(
    routed.spec.tls.map((entry: Json) => entry.hosts.length),
    [1, 1, 1],
    "one TLS entry per hostname",
  );
  t.is(new Set(routed.spec.tls.map((entry: Json) => entry.secretName)).size, 3, "one TLS secret per hostname");
  const routes = await eventually(async () => {
    const listed = (await acme.domains.listDomains({ app: "shop" })).routes.filter((route) => route.processType === "web");
    const state = (hostname: string) => listed.find((route) => route.hostname === hostname)?.certificate?.state;
    return state(BROKEN_DOMAIN) === CertificateState.FAILED &&
      state("shop.example.com") === CertificateState.ISSUED &&
      state("shop.berth.localhost") === CertificateState.ISSUED
      ? listed
      : undefined;
  }, "the certificates issued, the broken domain's failed");
  t.regex(routes.find((route) => route.hostname === BROKEN_DOMAIN)!.certificate!.lastError, /NXDOMAIN/);
  t.deepEqual(routes.map((route) => [route.hostname, route.customDomain]).sort(), [
    [BROKEN_DOMAIN, true],
    ["shop.berth.localhost", false],
    ["shop.example.com", true],
  ]);
  t.true(
    routes.every((route) => route.healthyEndpoints === 2),
    "every hostname of web reaches its two ready pods",
  );

  t.log("custom domains", new Date().toISOString());
  // A new release rolls out pod by pod: each v2 pod's readiness is a step, and v1's pods go.
  const second = await deploy("v2");
  t.is(second.rollout.state, RolloutState.SUCCEEDED, second.rollout.message);
  t.true(kinds(second.events).filter((kind) => kind === RolloutEventKind.REPLICA_HEALTHY).length >= 5, second.events.join(","));
  t.true(kinds(second.events).includes(RolloutEventKind.REPLICA_STOPPED));
  const rolled = await kubectl.run(["rollout", "status", `deployment/${processObjectName("shop", "web")}`, "-n", namespace, "--timeout=30s"]);
  t.is(rolled.code, 0, rolled.stderr);

  t.log("rolled out v2", new Date().toISOString());
  // ps:delete deletes the pod; its ReplicaSet replaces it.
  const [victim] = podsOf("web").map((pod) => pod.metadata.name as string);
  t.regex((await berth(["ps:delete", victim!])).stdout, /Deleted/);
  await eventually(
    async () => {
      const { replicas } = await acme.formation.listReplicas({ app: "shop", processType: "web" });
      return replicas.length === 2 && replicas.every((r) => r.ready) && !replicas.some((r) => r.name === victim) ? true : undefined;
    },
    "the deleted pod replaced",
    60_000,
  );
  t.false(podsOf("web").some((pod) => pod.metadata.name === victim));

  t.log("deleted a pod", new Date().toISOString());
  // ps:restart restarts the Deployment as kubectl rollout restart does.
  const workerBefore = podsOf("worker").map((pod) => pod.metadata.name as string);
  // The CLI follows the restart's rollout to its end, as it follows a deploy.
  t.regex((await berth(["ps:restart", "worker"])).stdout, /Restarted worker/);
  const worker = api.objects({ kind: "Deployment", namespace, name: processObjectName("shop", "worker") })[0] as Json;
  t.truthy(worker.spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]);
  await eventually(
    async () => (podsOf("worker").length === 1 && !workerBefore.includes(podsOf("worker")[0]!.metadata.name) ? true : undefined),
    "a new worker pod",
  );

  t.log("restarted", new Date().toISOString());
  // logs -f: the pods' logs through the log subresource, new lines as the pods print them.
  const follower = spawn(process.execPath, [join(root, "packages/cli/bin/berth.js"), "logs", "-f", "--type", "web", "-n", "5", "--app", "shop"], {
    cwd: root,
    env: { ...process.env, BERTH_API_URL: platform.urls.api, BERTH_TOKEN: tokens.acme!, BERTH_CONFIG_DIR: platform.dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => follower.kill());
  let followed = "";
  follower.stdout!.on("data", (chunk: Buffer) => (followed += chunk.toString()));
  await eventually(async () => (followed.includes(": web up") ? true : undefined), "the web pods' past lines");
  const [webPod] = podsOf("web");
  await eventually(async () => {
    api.writePodLog(namespace, webPod!.metadata.name, "GET /checkout 200");
    return followed.includes(`${webPod!.metadata.name}: GET /checkout 200`) ? true : undefined;
  }, "a new line while following");
  follower.kill("SIGINT");

  t.log("followed logs", new Date().toISOString());
  // A release whose web crash loops: ps and the progress stream say CrashLoopBackOff, and v2 is rolled back to.
  api.setPodBehaviour((pod) =>
    runs(pod as Json, "v3") && (pod as Json).metadata.labels["app.kubernetes.io/component"] === "web"
      ? { outcome: "crash-loop", delayMs: 50, logs: ["panic: missing DATABASE_URL"] }
      : serving(pod as Json),
  );
  const deployed = await acme.apps.deploy({ app: "shop", artifact: { source: { case: "image", value: image("v3") } }, procfile: PROCFILE });
  const version = deployed.release!.version;
  const crashing = await eventually(async () => {
    const row = (await berth(["ps", "--type", "web"])).stdout.split("\n").find((line) => line.includes(` v${version} `));
    return row?.includes("(CrashLoopBackOff)") ? row : undefined;
  }, "ps shows the new release's pod crash looping");
  t.regex(crashing, /\bno\b/, "and not ready");
  const broken = await followRollout(acme, "shop", deployed.rollout!.id);
  t.is(broken.rollout.state, RolloutState.ROLLED_BACK);
  t.is(broken.rollout.reason, "PROGRESS_DEADLINE_EXCEEDED");
  const release = (await acme.apps.getRelease({ app: "shop", version: deployed.release!.version })).release!;
  t.regex(release.failureMessage, /CrashLoopBackOff/);
  t.true(release.failureLog.includes("panic: missing DATABASE_URL"), release.failureLog.join("\n"));
  await eventually(async () => (podsOf("web").length === 2 && podsOf("web").every((pod) => runs(pod, "v2")) ? true : undefined), "v2's web pods alone", 60_000);
  const { replicas: afterRollback } = await acme.formation.listReplicas({ app: "shop", processType: "web" });
  t.deepEqual(
    afterRollback.map((replica) => [replica.releaseVersion, replica.state]),
    [
      [second.release.version, ReplicaState.UP],
      [second.release.version, ReplicaState.UP],
    ],
  );

  t.log("rolled back", new Date().toISOString());
  // Rollback by hand to v1: a new release of v1's image and processes; the Deployments' pods run it again.
  const byHand = await acme.apps.rollback({ app: "shop", version: first.release.version });
  const rolledBy = await followRollout(acme, "shop", byHand.rollout!.id);
  t.is(rolledBy.rollout.state, RolloutState.SUCCEEDED, rolledBy.rollout.message);
  const restored = byHand.release!.version;
  t.is((await acme.apps.getRelease({ app: "shop", version: restored })).release!.rollbackOfVersion, first.release.version);
  t.is((await acme.apps.getApp({ app: "shop" })).app!.currentReleaseVersion, restored);
  await eventually(
    async () => (podsOf("web").length === 2 && podsOf("web").every((pod) => runs(pod, "v1") && !pod.metadata.deletionTimestamp) ? true : undefined),
    "v1's image on the web pods again",
    60_000,
  );
  // The rollout ends once the new pods are ready; v2's last pods may still be draining.
  const afterByHand = await eventually(
    async () => {
      const { replicas } = await acme.formation.listReplicas({ app: "shop" });
      return replicas.length === 5 ? replicas : undefined;
    },
    "v2's pods gone",
    60_000,
  );
  t.deepEqual(
    afterByHand.map((replica) => [replica.processType, replica.releaseVersion, replica.state]).sort(),
    [
      ["admin-web", restored, ReplicaState.UP],
      ["api-tcp", restored, ReplicaState.UP],
      ["web", restored, ReplicaState.UP],
      ["web", restored, ReplicaState.UP],
      ["worker", restored, ReplicaState.UP],
    ],
    "every replica runs the restored release",
  );
  t.true(
    (await acme.formation.getFormation({ app: "shop" })).processes.every((process) => process.readyReplicas === process.replicas),
    "the formation is whole again",
  );

  t.log("rolled back by hand", new Date().toISOString());
  // Another team sees none of it; everything of acme's is in acme's namespace.
  t.false((await globex.apps.listApps({})).apps.some((app) => app.name === "shop"));
  t.is(ConnectError.from(await t.throwsAsync(globex.formation.listReplicas({ app: "shop" }))).code, Code.NotFound);
  t.is(ConnectError.from(await t.throwsAsync(globex.domains.listDomains({ app: "shop" }))).code, Code.NotFound);
  t.is(ConnectError.from(await t.throwsAsync(globex.formation.deleteReplica({ app: "shop", replica: podsOf("web")[0]!.metadata.name }))).code, Code.NotFound);
  const shopKinds = ["Pod", "Deployment", "Service", "Secret", "Job", "PodDisruptionBudget", "Ingress"];
  const shopObjects = shopKinds.flatMap((kind) => api.objects({ kind, labelSelector: "app.kubernetes.io/name=shop" }) as Json[]);
  t.deepEqual(new Set(shopObjects.map((object) => object.kind)), new Set(shopKinds), "every kind the app has, found by its label");
  t.deepEqual(
    shopObjects
      .filter((object) => object.metadata.namespace !== namespace)
      .map((object) => `${object.kind}/${object.metadata.namespace}/${object.metadata.name}`),
    [],
    "everything of acme's app in acme's namespace",
  );
});
