import test from "ava";
import { validateKubernetesObject } from "@berth/fake-kube-api";
import { appObjects, releaseJobFor, manifestSettingsFrom } from "../src/engine/kubernetes/manifests.js";
import { readSchedulerConfig } from "../src/config.js";
test("scratch", async (t) => {
  const settings = manifestSettingsFrom(readSchedulerConfig({}));
  const release: any = { app: "demo", version: 3, artifact: { image: "registry.example/demo:1", digest: "" }, processes: [
    { processType: "web", command: "node web.js" }, { processType: "admin-web", command: "node web.js --admin" }, { processType: "worker", command: "node worker.js" }, { processType: "release", command: "node release.js" }, { processType: "api-tcp", command: "node api-tcp.js" }], config: { GREETING: "hi" } };
  const objs = [...appObjects({ team: "acme", release, formation: [{ processType: "web", replicas: 3, size: "standard-2x", cpuMillis: null, memoryMb: null, health: {path: "/health"}, restartGeneration: 0 }], autoscaleRules: [{processType: "worker", minReplicas: 1, maxReplicas: 4, targetCpuPercent: 70}] }, settings), releaseJobFor({ team: "acme", release, formation: [], autoscaleRules: [] }, settings)!];
  for (const o of objs) { const v = await validateKubernetesObject(o); t.log(o.kind, o.metadata!.name, v.schemaChecked, JSON.stringify(v.violations)); }
  t.log(JSON.stringify(objs[0], null, 1));
  t.pass();
});
