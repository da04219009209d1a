import { createHash } from "node:crypto";
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { startApiHarness } from "./support/api-harness.js";

test("the formation view joins routes: URLs and custom domains for web types, internal hostname for tcp types", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  await clients.domains.addDomain({ app: "shop", processType: "admin-web", hostname: "admin.example.com" });
  const { processes } = await clients.formation.getFormation({ app: "shop" });
  const byType = Object.fromEntries(processes.map((p) => [p.processType, p]));
  t.deepEqual(byType["web"]!.urls, ["https://shop.berth.localhost"]);
  t.deepEqual(byType["admin-web"]!.urls, ["https://shop-admin-web.berth.localhost", "https://admin.example.com"]);
  t.deepEqual(byType["admin-web"]!.customDomains, ["admin.example.com"]);
  t.is(byType["api-tcp"]!.internalHostname, "shop-api-tcp");
  t.is(byType["api-tcp"]!.routingClass, RoutingClass.TCP);
  t.deepEqual(byType["worker"]!.urls, []);
  t.is(byType["worker"]!.internalHostname, "");

  const app = await clients.apps.getApp({ app: "shop" });
  t.is(app.app!.name, "shop");
  t.deepEqual(app.processes.find((p) => p.processType === "admin-web")!.customDomains, ["admin.example.com"]);
  t.is(app.currentRelease, undefined, "no release before the first deploy");

  const domains = await clients.domains.listDomains({ app: "shop" });
  t.deepEqual(domains.routes.map((r) => [r.hostname, r.customDomain]).sort(), [
    ["admin.example.com", true],
    ["shop-admin-web.berth.localhost", false],
    ["shop.berth.localhost", false],
  ]);
  await clients.domains.removeDomain({ app: "shop", hostname: "admin.example.com" });
  t.deepEqual((await clients.domains.listDomains({ app: "shop" })).routes.filter((r) => r.customDomain), []);
});

test("scale and resize change the formation and answer with the joined view", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const scaled = await clients.formation.scale({ app: "shop", replicas: { web: 3, worker: 1 } });
  const web = scaled.processes.find((p) => p.processType === "web")!;
  t.is(web.replicas, 3);
  t.deepEqual(web.urls, ["https://shop.berth.localhost"]);
  t.is(scaled.processes.find((p) => p.processType === "worker")!.replicas, 1);
  const resized = await clients.formation.resize({ app: "shop", changes: [{ processType: "web", size: "standard-2x" }] });
  t.is(resized.processes.find((p) => p.processType === "web")!.size, "standard-2x");
  t.deepEqual((await clients.formation.listPodSizes({})).sizes.map((s) => s.name), ["standard-1x", "standard-2x"]);
  const rule = { processType: "web", minReplicas: 3, maxReplicas: 8, targetCpuPercent: 75 };
  t.like((await clients.formation.setAutoscale({ app: "shop", rule })).rule, rule);
  t.is((await clients.formation.listAutoscale({ app: "shop" })).rules.length, 1);
  await clients.formation.unsetAutoscale({ app: "shop", processType: "web" });
  t.deepEqual((await clients.formation.listAutoscale({ app: "shop" })).rules, []);
  t.deepEqual((await clients.formation.listReplicas({ app: "shop", processType: "web" })).replicas.map((r) => r.name), ["shop-web-1"]);
  t.is((await clients.formation.restartProcess({ app: "shop", processType: "web" })).rollout!.processTypes[0], "web");
});

test("a deploy uploads the archive in chunks, creates a release and its progress streams over Connect, gRPC and gRPC-Web", async (t) => {
  const h = await startApiHarness(t);
  const { token, clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const archive = new TextEncoder().encode("pretend this is a tar.gz");
  const sha256 = createHash("sha256").update(archive).digest("hex");
  const upload = await clients.apps.beginSourceUpload({ app: "shop", sizeBytes: BigInt(archive.length), sha256 });
  let complete = false;
  for (let offset = 0; offset < archive.length; offset += upload.maxChunkBytes) {
    const chunk = archive.subarray(offset, offset + upload.maxChunkBytes);
    complete = (await clients.apps.uploadSourceChunk({ app: "shop", uploadId: upload.uploadId, offset: BigInt(offset), data: chunk })).complete;
  }
  t.true(complete);
  const deployed = await clients.apps.deploy({
    app: "shop",
    artifact: { source: { case: "sourceUploadId", value: upload.uploadId }, digest: sha256 },
    procfile: "web: node server.js\nworker: node worker.js\n",
    description: "first deploy",
  });
  t.is(deployed.release!.version, 1);
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transports: Record<string, Transport> = {
    connect: createConnectTransport({ baseUrl: h.api.url, httpVersion: "1.1", interceptors: [bearer] }),
    grpc: createGrpcTransport({ baseUrl: h.api.url, interceptors: [bearer] }),
    grpcWeb: createGrpcWebTransport({ baseUrl: h.api.url, httpVersion: "1.1", interceptors: [bearer] }),
  };
  for (const [protocol, transport] of Object.entries(transports)) {
    const kinds: RolloutEventKind[] = [];
    for await (const step of createClient(AppService, transport).watchRollout({ app: "shop", rolloutId: deployed.rollout!.id })) {
      kinds.push(step.event!.kind);
    }
    t.deepEqual(kinds, [RolloutEventKind.ROLLOUT_STARTED, RolloutEventKind.REPLICA_HEALTHY, RolloutEventKind.ROLLOUT_SUCCEEDED], protocol);
    const lines: string[] = [];
    for await (const { line } of createClient(FormationService, transport).streamLogs({ app: "shop", tailLines: 10 })) lines.push(line!.text);
    t.deepEqual(lines, ["first line", "second line"], protocol);
  }
  const resumed: bigint[] = [];
  for await (const step of clients.apps.watchRollout({ app: "shop", rolloutId: deployed.rollout!.id, fromSequence: 2n })) {
    resumed.push(step.event!.sequence);
  }
  t.deepEqual(resumed, [3n], "a watch resumes after the last sequence it saw");
  const app = await clients.apps.getApp({ app: "shop" });
  t.is(app.currentRelease!.version, 1);
  t.is(app.currentRelease!.description, "first deploy");
});

test("config vars create releases; releases list, show and roll back", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const set = await clients.apps.updateConfig({ app: "shop", set: { DATABASE_URL: "postgres://db", MODE: "live" } });
  t.is(set.release!.version, 1);
  await clients.apps.updateConfig({ app: "shop", unset: ["MODE"] });
  t.deepEqual((await clients.apps.getConfig({ app: "shop" })).config, { DATABASE_URL: "postgres://db" });
  const rolled = await clients.apps.rollback({ app: "shop", version: 1 });
  t.is(rolled.release!.version, 3);
  t.deepEqual((await clients.apps.listReleases({ app: "shop" })).releases.map((r) => r.version), [1, 2, 3]);
  t.is((await clients.apps.getRelease({ app: "shop", version: 2 })).release!.description, "Config change");
});

test("deleting an app stops its processes, then removes its routes, then the app; UNIMPLEMENTED peers hold nothing", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  await clients.formation.scale({ app: "shop", replicas: { web: 2, worker: 1 } });
  await clients.formation.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 2, maxReplicas: 4, targetCpuPercent: 60 } });
  await clients.domains.addDomain({ app: "shop", processType: "web", hostname: "shop.example.com" });
  const start = h.timeline.length;
  await clients.apps.deleteApp({ app: "shop" });
  const changes = h.timeline.slice(start).filter((call) => !/\.(Get|List)/.test(call));
  t.deepEqual(changes, ["scheduler.UnsetAutoscale", "scheduler.UpdateFormation", "router.DeleteAppRoutes", "scheduler.DeleteApp"]);
  t.false(h.scheduler.apps.has("shop"));
  t.deepEqual((await clients.apps.listApps({})).apps, []);
  await h.createApp(clients, "shop");
  t.deepEqual((await clients.domains.listDomains({ app: "shop" })).routes.filter((r) => r.customDomain), [], "the old domain went with the app");
});

test("a peer's refusal reaches every client with its code, message and field details", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const error = ConnectError.from(await t.throwsAsync(clients.apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "refused:1" } } })));
  t.is(error.code, Code.InvalidArgument);
  t.deepEqual(fieldViolationsOf(error), [{ field: "artifact.image", description: "refused by the scheduler" }]);
});
