import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { startApiHarness } from "./support/api-harness.js";

// The order of the calls a delete makes can only be seen on recording peers: these are the stand-ins.
// Everything else about composition runs against the real services in platform-composition.test.ts.

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
  t.deepEqual(
    (await clients.domains.listDomains({ app: "shop" })).routes.filter((r) => r.customDomain),
    [],
    "the old domain went with the app",
  );
});

test("deleting an app whose deletion is still stopping its replicas is refused, naming why, and calls no peer to change anything", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  h.scheduler.apps.get("shop")!.app.deleting = true;
  const start = h.timeline.length;
  const refused = ConnectError.from(await t.throwsAsync(clients.apps.deleteApp({ app: "shop" })));
  t.is(refused.code, Code.FailedPrecondition);
  t.regex(refused.rawMessage, /being deleted: its replicas are still stopping/);
  t.deepEqual(
    h.timeline.slice(start).filter((call) => !/\.(Get|List)/.test(call)),
    [],
  );
});
