import test from "ava";
import { silentLogger } from "@berth/kit";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import type { PodBehaviourHook } from "@berth/fake-kube-api";
import { createKubernetesDeployer } from "../src/engine/kubernetes/kubernetes-deployer.js";
import { RELEASE_SECRETS_KEPT, releaseSecretsToPrune } from "../src/engine/kubernetes/release-secrets.js";
import { DEMO_SETTINGS, NAMESPACE, demoApp, formationEntry } from "./support/kubernetes-demo-app.js";

const secretsOf = (versions: number[]) => versions.map((version) => ({ name: `demo-config-v${version}`, version }));

const cases: [string, number[], number, string[], number, string[]][] = [
  ["nothing old enough", [1, 2, 3], 3, [], 6, []],
  ["the oldest beyond the newest six go", [1, 2, 3, 4, 5, 6, 7, 8], 8, [], 6, ["demo-config-v1", "demo-config-v2"]],
  ["one a ReplicaSet still runs stays", [1, 2, 3, 4, 5, 6, 7, 8], 8, ["demo-config-v1"], 6, ["demo-config-v2"]],
  ["a rollback to an older release keeps the newer ones", [3, 4, 5, 6, 7, 8, 9], 5, [], 6, ["demo-config-v3"]],
  ["a gap in versions counts versions, not Secrets", [1, 9], 9, [], 6, ["demo-config-v1"]],
];
for (const [title, versions, current, referenced, kept, expected] of cases) {
  test(`config Secrets to prune: ${title}`, (t) => {
    t.deepEqual(releaseSecretsToPrune(secretsOf(versions), current, new Set(referenced), kept), expected);
  });
}

async function setup(t: { teardown(fn: () => unknown): void }, podBehaviour?: PodBehaviourHook) {
  const api = await createFakeKubeApi({ podTimings: { startMs: 5, readyMs: 5 }, ...(podBehaviour ? { podBehaviour } : {}) });
  t.teardown(() => api.close());
  const deployer = createKubernetesDeployer({ kubeConfig: api.kubeConfig(), settings: DEMO_SETTINGS, logger: silentLogger });
  const secrets = () =>
    api
      .objects({ kind: "Secret", namespace: NAMESPACE })
      .map((secret) => (secret as { metadata: { name: string } }).metadata.name)
      .sort((a, b) => Number(a.split("-v")[1]) - Number(b.split("-v")[1]));
  /** Every config Secret a ReplicaSet's pod template names exists: no pod can start without its configuration. */
  const dangling = () =>
    api
      .objects({ kind: "ReplicaSet", namespace: NAMESPACE })
      .flatMap((replicaSet) =>
        (replicaSet as any).spec.template.spec.containers.flatMap((container: any) => container.envFrom.map((source: any) => source.secretRef.name)),
      )
      .filter((name: string) => !secrets().includes(name));
  const release = (version: number) =>
    demoApp({ version, release: { config: { GREETING: `hello ${version}` } }, formation: [formationEntry("web", { replicas: 1 })] });
  return { api, deployer, secrets, dangling, release };
}

test("rolling out release after release keeps the config Secrets of the newest releases and of live ReplicaSets, and prunes the rest", async (t) => {
  const { deployer, secrets, dangling, release } = await setup(t);
  for (let version = 1; version <= 9; version++) {
    await deployer.applyApp(release(version));
    t.like(await deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 20_000 }), { ok: true }, `v${version} rolls out`);
    t.deepEqual(dangling(), [], `after v${version} every ReplicaSet's Secret exists`);
  }
  await deployer.applyApp(release(9));
  t.deepEqual(
    secrets(),
    Array.from({ length: RELEASE_SECRETS_KEPT }, (_, index) => `demo-config-v${9 - RELEASE_SECRETS_KEPT + 1 + index}`),
  );
});

test("the previous release's Secret stays while its pods still serve a rollout that never becomes ready", async (t) => {
  let failing = false;
  const { api, deployer, secrets, dangling, release } = await setup(t, () => (failing ? { outcome: "never-ready" } : { outcome: "ready" }));
  await deployer.applyApp(release(1));
  t.like(await deployer.waitForRollout({ app: "demo", namespace: NAMESPACE, progressDeadlineMs: 20_000 }), { ok: true });
  failing = true;
  for (let version = 2; version <= 9; version++) await deployer.applyApp(release(version));
  t.true(secrets().includes("demo-config-v1"), "v1's pods still serve: their Secret stays");
  t.deepEqual(dangling(), []);
  const v1Pods = api
    .objects({ kind: "Pod", namespace: NAMESPACE })
    .filter((pod) => (pod as any).spec.containers[0].envFrom[0].secretRef.name === "demo-config-v1");
  t.true(v1Pods.length > 0);
  t.false(secrets().includes("demo-config-v2"), "an in-between release nothing runs is pruned");
});
