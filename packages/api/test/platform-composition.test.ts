import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { fieldViolationsOf } from "@berth/kit";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { ReleaseStatus, RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { deployDirectory, eventually, followRolloutThroughApi, startPlatformHarness, uploadDirectory } from "./support/platform-harness.js";

// Against the real scheduler, router, turn-allocator and netpol.

test("deploy the demo app through the API: progress streams over Connect, gRPC and gRPC-Web; the formation joins the router's routes", async (t) => {
  const h = await startPlatformHarness(t);
  const { token, clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(clients, "shop");
  const { rollout, kinds } = await followRolloutThroughApi(clients, "shop", deployed.rollout!.id);
  t.is(rollout.state, RolloutState.SUCCEEDED, `${rollout.reason} ${rollout.message}`);
  t.is(kinds[0], RolloutEventKind.ROLLOUT_STARTED);
  t.true(kinds.includes(RolloutEventKind.ROLLOUT_SUCCEEDED));
  t.is(kinds.at(-1), RolloutEventKind.TRAFFIC_COUNTED, "the stream ends once the rollout's figures are final");

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
    const replayed: RolloutEventKind[] = [];
    for await (const step of createClient(AppService, transport).watchRollout({ app: "shop", rolloutId: deployed.rollout!.id })) {
      replayed.push(step.event!.kind);
    }
    t.deepEqual(replayed, kinds, protocol);
    const lines: string[] = [];
    for await (const { line } of createClient(FormationService, transport).streamLogs({ app: "shop", processType: "release", tailLines: 50 })) {
      lines.push(line!.text);
    }
    t.true(lines.length > 0, `${protocol}: the release phase's log lines stream`);
  }

  await clients.formation.scale({ app: "shop", replicas: { "admin-web": 1, "api-tcp": 1 } });
  const processes = await eventually(async () => {
    const { processes } = await clients.formation.getFormation({ app: "shop" });
    const adminWeb = processes.find((p) => p.processType === "admin-web");
    // Its URL turns HTTPS once the router serves the hostname's certificate.
    return adminWeb?.urls[0]?.startsWith("https://") ? processes : undefined;
  }, "admin-web to get its route and certificate");
  const byType = Object.fromEntries(processes.map((p) => [p.processType, p]));
  t.regex(byType.web!.urls[0]!, /^https:\/\/shop\.berth\.localhost(:\d+)?$/);
  t.regex(byType["admin-web"]!.urls[0]!, /^https:\/\/shop-admin\.berth\.localhost(:\d+)?$/);
  t.is(byType["api-tcp"]!.routingClass, RoutingClass.TCP);
  t.is(byType["api-tcp"]!.internalHostname, "shop-api-tcp");
  t.deepEqual(byType.worker!.urls, []);

  const app = await clients.apps.getApp({ app: "shop" });
  t.is(app.currentRelease!.version, deployed.release!.version);
  t.is(app.currentRelease!.status, ReleaseStatus.SUCCEEDED);
  t.true((await clients.formation.listReplicas({ app: "shop", processType: "web" })).replicas.length >= 1);
});

test("custom domains go through the router; deleting the app stops it, removes its routes and domains, then the app", async (t) => {
  const h = await startPlatformHarness(t);
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(clients, "shop");
  t.is((await followRolloutThroughApi(clients, "shop", deployed.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  const added = await clients.domains.addDomain({ app: "shop", processType: "web", hostname: "shop.example.com" });
  t.is(added.route!.hostname, "shop.example.com");
  t.true(added.route!.customDomain);
  const listed = await clients.domains.listDomains({ app: "shop" });
  t.true(listed.routes.some((r) => r.hostname === "shop.example.com" && r.customDomain));
  const web = (await clients.formation.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")!;
  t.deepEqual(web.customDomains, ["shop.example.com"]);
  // The platform CA certifies no custom domain: the router serves it on plain HTTP, and says so.
  t.regex(web.urls.at(-1)!, /^http:\/\/shop\.example\.com(:\d+)?$/, "custom domains come after the platform URL");

  await clients.apps.deleteApp({ app: "shop" });
  // The answer comes once the replica left the endpoints; the app goes when it has stopped.
  await eventually(async () => ((await clients.apps.listApps({})).apps.length === 0 ? true : undefined), "the app gone");
  t.is(ConnectError.from(await t.throwsAsync(clients.formation.getFormation({ app: "shop" }))).code, Code.NotFound);
  // The name and the domain are free again: nothing of the old app is left behind.
  await clients.apps.createApp({ name: "shop" });
  t.deepEqual((await clients.domains.listDomains({ app: "shop" })).routes, []);
  const again = await clients.domains.addDomain({ app: "shop", processType: "web", hostname: "shop.example.com" });
  t.is(again.route!.app, "shop");
});

test("a retried deploy with the same request id makes one release on the real scheduler", async (t) => {
  const h = await startPlatformHarness(t);
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop", requestId: "create-1" });
  await clients.apps.createApp({ name: "shop", requestId: "create-1" });
  const { uploadId } = await uploadDirectory(clients, "shop");
  const request = { app: "shop", artifact: { source: { case: "sourceUploadId" as const, value: uploadId } }, requestId: "deploy-1" };
  const first = await clients.apps.deploy(request);
  const again = await clients.apps.deploy(request);
  t.is(again.release!.version, first.release!.version);
  t.is(again.rollout!.id, first.rollout!.id);
  t.is((await clients.apps.listReleases({ app: "shop" })).releases.length, 1);
  t.is((await clients.apps.listApps({})).apps.length, 1);
});

test("a second team can neither see nor touch the first team's running app", async (t) => {
  const h = await startPlatformHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await acme.clients.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(acme.clients, "shop");
  t.is((await followRolloutThroughApi(acme.clients, "shop", deployed.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  t.deepEqual((await globex.clients.apps.listApps({})).apps, []);
  const attempts = [
    globex.clients.formation.getFormation({ app: "shop" }),
    globex.clients.formation.scale({ app: "shop", replicas: { web: 3 } }),
    globex.clients.apps.updateConfig({ app: "shop", set: { PWNED: "1" } }),
    globex.clients.domains.addDomain({ app: "shop", processType: "web", hostname: "evil.example.com" }),
    globex.clients.apps.rollback({ app: "shop", version: 1 }),
    globex.clients.apps.deleteApp({ app: "shop" }),
  ];
  for (const attempt of attempts) t.is(ConnectError.from(await t.throwsAsync(attempt)).code, Code.NotFound);
  const web = (await acme.clients.formation.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")!;
  t.is(web.replicas, 1);
  t.deepEqual((await acme.clients.apps.getConfig({ app: "shop" })).config, {});
  t.deepEqual(web.customDomains, []);
  t.is((await acme.clients.apps.listReleases({ app: "shop" })).releases.length, 1);
});

test("scale, sizes, autoscale, config vars, releases and rollback on the real scheduler", async (t) => {
  const h = await startPlatformHarness(t);
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(clients, "shop");
  t.is((await followRolloutThroughApi(clients, "shop", deployed.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);

  const scaled = await clients.formation.scale({ app: "shop", replicas: { worker: 2 } });
  t.is(scaled.processes.find((p) => p.processType === "worker")!.replicas, 2);
  const resized = await clients.formation.resize({ app: "shop", changes: [{ processType: "worker", size: "standard-2x" }] });
  const worker = resized.processes.find((p) => p.processType === "worker")!;
  const sizes = (await clients.formation.listPodSizes({})).sizes;
  const size2x = sizes.find((s) => s.name === "standard-2x")!;
  t.deepEqual([worker.size, worker.cpuMillis, worker.memoryMb], ["standard-2x", size2x.cpuMillis, size2x.memoryMb]);
  // New resources roll the running workers onto them; the next change waits for that rollout to end.
  if (resized.rollout) t.is((await followRolloutThroughApi(clients, "shop", resized.rollout.id)).rollout.state, RolloutState.SUCCEEDED);

  await clients.formation.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 1, maxReplicas: 3, targetCpuPercent: 75 } });
  t.deepEqual(
    (await clients.formation.listAutoscale({ app: "shop" })).rules.map((r) => [r.processType, r.minReplicas, r.maxReplicas]),
    [["web", 1, 3]],
  );
  const manual = ConnectError.from(await t.throwsAsync(clients.formation.scale({ app: "shop", replicas: { web: 2 } })));
  t.is(manual.code, Code.FailedPrecondition, "the scheduler refuses manual scaling under a rule, and the API passes its answer on");
  await clients.formation.unsetAutoscale({ app: "shop", processType: "web" });

  const configured = await clients.apps.updateConfig({ app: "shop", set: { GREETING: "hello" } });
  t.is(configured.release!.version, deployed.release!.version + 1);
  t.deepEqual((await clients.apps.getConfig({ app: "shop" })).config, { GREETING: "hello" });
  t.is((await followRolloutThroughApi(clients, "shop", configured.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  const rolledBack = await clients.apps.rollback({ app: "shop", version: deployed.release!.version });
  t.is(rolledBack.release!.rollbackOfVersion, deployed.release!.version);
  t.is((await followRolloutThroughApi(clients, "shop", rolledBack.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
  t.deepEqual((await clients.apps.getConfig({ app: "shop" })).config, {});
  t.deepEqual((await clients.apps.listReleases({ app: "shop" })).releases.map((r) => r.version).sort(), [1, 2, 3]);
});

test("the scheduler's own refusals reach the client with their code and field", async (t) => {
  const h = await startPlatformHarness(t);
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const error = ConnectError.from(
    await t.throwsAsync(clients.apps.deploy({ app: "shop", artifact: { source: { case: "image", value: "registry.example.com/shop:1" } } })),
  );
  t.is(error.code, Code.FailedPrecondition, "the local engine cannot run an image");
  t.regex(error.message, /BERTH_ENGINE=kubernetes/);
  const noArtifact = ConnectError.from(await t.throwsAsync(clients.apps.deploy({ app: "shop", procfile: "web: run" })));
  t.is(noArtifact.code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(noArtifact).map((v) => v.field),
    ["artifact"],
  );
  t.deepEqual((await clients.apps.listReleases({ app: "shop" })).releases, []);
});
