import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { mutatingCalls } from "./support/peer-stand-ins.js";
import { startApiHarness } from "./support/api-harness.js";

const codeOf = (error: unknown) => ConnectError.from(error).code;

test("a second team sees none of the first team's apps and gets NOT_FOUND for each of them", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await h.createApp(acme.clients, "shop");
  t.deepEqual((await globex.clients.apps.listApps({})).apps, []);
  t.deepEqual(
    (await acme.clients.apps.listApps({})).apps.map((app) => app.name),
    ["shop"],
  );

  const reads = {
    getApp: () => globex.clients.apps.getApp({ app: "shop" }),
    listReleases: () => globex.clients.apps.listReleases({ app: "shop" }),
    getConfig: () => globex.clients.apps.getConfig({ app: "shop" }),
    getFormation: () => globex.clients.formation.getFormation({ app: "shop" }),
    listReplicas: () => globex.clients.formation.listReplicas({ app: "shop" }),
    listAutoscale: () => globex.clients.formation.listAutoscale({ app: "shop" }),
    listDomains: () => globex.clients.domains.listDomains({ app: "shop" }),
  };
  for (const [name, call] of Object.entries(reads)) {
    const error = ConnectError.from(await t.throwsAsync(call()));
    t.is(error.code, Code.NotFound, name);
    t.is(error.rawMessage, 'app "shop" not found', name);
  }
  const missing = ConnectError.from(await t.throwsAsync(globex.clients.apps.getApp({ app: "nowhere" })));
  t.is(missing.rawMessage, 'app "nowhere" not found', "another team's app reads exactly like a missing one");
});

test("a second team cannot change, deploy to, stream from or delete the first team's app", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await h.createApp(acme.clients, "shop");
  const acmeUpload = await acme.clients.apps.beginSourceUpload({ app: "shop", sizeBytes: 3n, sha256: "a".repeat(64) });
  const before = mutatingCalls(h.scheduler.log).length;

  const mutations = {
    scale: () => globex.clients.formation.scale({ app: "shop", replicas: { web: 5 } }),
    resize: () => globex.clients.formation.resize({ app: "shop", changes: [{ processType: "web", size: "standard-2x" }] }),
    setAutoscale: () =>
      globex.clients.formation.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 1, maxReplicas: 3, targetCpuPercent: 50 } }),
    unsetAutoscale: () => globex.clients.formation.unsetAutoscale({ app: "shop", processType: "web" }),
    restart: () => globex.clients.formation.restartProcess({ app: "shop", processType: "web" }),
    deleteReplica: () => globex.clients.formation.deleteReplica({ app: "shop", replica: "shop-web-1" }),
    updateConfig: () => globex.clients.apps.updateConfig({ app: "shop", set: { A: "1" } }),
    rollback: () => globex.clients.apps.rollback({ app: "shop" }),
    deploy: () => globex.clients.apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "evil:latest" } } }),
    beginUpload: () => globex.clients.apps.beginSourceUpload({ app: "shop", sizeBytes: 3n, sha256: "a".repeat(64) }),
    addDomain: () => globex.clients.domains.addDomain({ app: "shop", processType: "web", hostname: "evil.example.com" }),
    removeDomain: () => globex.clients.domains.removeDomain({ app: "shop", hostname: "shop.example.com" }),
    deleteApp: () => globex.clients.apps.deleteApp({ app: "shop" }),
  };
  for (const [name, call] of Object.entries(mutations)) t.is(codeOf(await t.throwsAsync(call())), Code.NotFound, name);

  // Another team's upload id is unknown to globex, even on its own app.
  await h.createApp(globex.clients, "portal");
  t.is(
    codeOf(await t.throwsAsync(globex.clients.apps.uploadSourceChunk({ app: "shop", uploadId: acmeUpload.uploadId, offset: 0n, data: new Uint8Array([1]) }))),
    Code.NotFound,
  );
  t.is(
    codeOf(await t.throwsAsync(globex.clients.apps.uploadSourceChunk({ app: "portal", uploadId: acmeUpload.uploadId, offset: 0n, data: new Uint8Array([1]) }))),
    Code.NotFound,
  );
  const stolenDeploy = await t.throwsAsync(
    globex.clients.apps.deploy({ app: "portal", artifact: { source: { case: "sourceUploadId", value: acmeUpload.uploadId } } }),
  );
  t.is(codeOf(stolenDeploy), Code.InvalidArgument);

  const streams = {
    logs: () => globex.clients.formation.streamLogs({ app: "shop" }),
    rollout: () => globex.clients.apps.watchRollout({ app: "shop", rolloutId: "rollout-shop-1" }),
  };
  for (const [name, open] of Object.entries(streams)) {
    const error = await t.throwsAsync(async () => {
      for await (const _ of open()) t.fail(`${name} streamed another team's data`);
    });
    t.is(codeOf(error), Code.NotFound, name);
  }

  t.deepEqual(mutatingCalls(h.scheduler.log).slice(before), ["CreateApp"], "only globex's own CreateApp reached the scheduler");
  t.deepEqual(mutatingCalls(h.router.log), []);
  t.true(h.scheduler.apps.has("shop"));
  t.is(h.scheduler.apps.get("shop")!.processes.find((p) => p.processType === "web")!.replicas, 1);
});

test("app names are global: a taken name is ALREADY_EXISTS without saying whose it is", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await h.createApp(acme.clients, "shop");
  const error = ConnectError.from(await t.throwsAsync(globex.clients.apps.createApp({ name: "shop" })));
  t.is(error.code, Code.AlreadyExists, error.message);
  t.false(error.rawMessage.includes("acme"));
});
