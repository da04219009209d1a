import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { mutatingCalls } from "./support/peer-stand-ins.js";
import { startApiHarness } from "./support/api-harness.js";

test("retrying CreateApp with the same request id returns the first app and creates nothing new", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  const first = await clients.apps.createApp({ name: "shop", requestId: "create-shop-1" });
  const again = await clients.apps.createApp({ name: "shop", requestId: "create-shop-1" });
  t.deepEqual(again, first);
  t.deepEqual(mutatingCalls(h.scheduler.log), ["CreateApp"]);
  const different = ConnectError.from(await t.throwsAsync(clients.apps.createApp({ name: "other", requestId: "create-shop-1" })));
  t.is(different.code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(different).map((v) => v.field),
    ["request_id"],
  );
  t.is(ConnectError.from(await t.throwsAsync(clients.apps.createApp({ name: "shop" }))).code, Code.AlreadyExists);
});

test("a retried deploy with the same request id does not make a second release", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const request = { app: "shop", artifact: { source: { case: "image" as const, value: "shop:1" } }, procfile: "web: serve", requestId: "deploy-7" };
  const first = await clients.apps.deploy(request);
  const again = await clients.apps.deploy(request);
  t.is(first.release!.version, 1);
  t.deepEqual(again, first);
  t.is((await clients.apps.listReleases({ app: "shop" })).releases.length, 1);
  const next = await clients.apps.deploy({ ...request, requestId: "deploy-8" });
  t.is(next.release!.version, 2);
});

test("request ids are scoped per team: the same id from two teams makes two apps", async (t) => {
  const h = await startApiHarness(t);
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await acme.clients.apps.createApp({ name: "shop", requestId: "same-id" });
  const theirs = await globex.clients.apps.createApp({ name: "portal", requestId: "same-id" });
  t.is(theirs.app!.name, "portal");
  t.is(theirs.app!.team, "globex");
  t.deepEqual(mutatingCalls(h.scheduler.log), ["CreateApp", "CreateApp"]);
});

test("config changes and rollbacks are idempotent too, whatever the order of the map", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const first = await clients.apps.updateConfig({ app: "shop", set: { A: "1", B: "2" }, requestId: "cfg-1" });
  const again = await clients.apps.updateConfig({ app: "shop", set: { B: "2", A: "1" }, requestId: "cfg-1" });
  t.is(again.release!.version, first.release!.version);
  const rolled = await clients.apps.rollback({ app: "shop", version: 1, requestId: "rb-1" });
  t.deepEqual(await clients.apps.rollback({ app: "shop", version: 1, requestId: "rb-1" }), rolled);
  t.deepEqual(mutatingCalls(h.scheduler.log), ["CreateApp", "UpdateConfig", "Rollback"]);
});

test("health check changes are idempotent per request id, and a set and an unset with the same id are two changes", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  const set = { app: "shop", processType: "web", health: { path: "/up" }, requestId: "hc-1" };
  const first = await clients.processes.setHealthCheck(set);
  t.deepEqual(await clients.processes.setHealthCheck(set), first);
  t.is(first.process!.processType, "web");
  const unset = await clients.processes.unsetHealthCheck({ app: "shop", processType: "web", requestId: "hc-1" });
  t.deepEqual(await clients.processes.unsetHealthCheck({ app: "shop", processType: "web", requestId: "hc-1" }), unset);
  t.is(unset.release!.version, first.release!.version + 1);
  t.deepEqual(mutatingCalls(h.scheduler.log), ["CreateApp", "UpdateHealthCheck", "UpdateHealthCheck"]);
  const different = ConnectError.from(await t.throwsAsync(clients.processes.setHealthCheck({ ...set, health: { path: "/other" } })));
  t.is(different.code, Code.InvalidArgument);
});

test("CreateTeam with a request id is idempotent for the admin", async (t) => {
  const h = await startApiHarness(t);
  const first = await h.admin.teams.createTeam({ name: "acme", requestId: "team-1" });
  t.deepEqual(await h.admin.teams.createTeam({ name: "acme", requestId: "team-1" }), first);
  t.is(ConnectError.from(await t.throwsAsync(h.admin.teams.createTeam({ name: "acme" }))).code, Code.AlreadyExists);
});
