import test from "ava";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { createRouteTable } from "../src/route-table.js";

const endpoint = (replica: string, port: number) => ({ replica, host: "127.0.0.1", port });
const web = (processType: string, endpoints: ReturnType<typeof endpoint>[], removed = false) => ({
  team: "acme",
  app: "shop",
  processType,
  routingClass: RoutingClass.WEB,
  endpoints,
  removed,
});

test("a snapshot is immutable: later changes do not alter a snapshot already read", (t) => {
  const table = createRouteTable("berth.localhost");
  table.applyEndpoints([web("web", [endpoint("a", 1)])], true);
  const before = table.current;
  table.applyEndpoints([web("web", [endpoint("b", 2)])], false);
  t.deepEqual(
    before.lookup("shop.berth.localhost")?.upstreams.map((u) => u.replica),
    ["a"],
  );
  t.deepEqual(
    table.current.lookup("shop.berth.localhost")?.upstreams.map((u) => u.replica),
    ["b"],
  );
});

test("applying endpoints reports the replicas that appeared and left", (t) => {
  const table = createRouteTable("berth.localhost");
  t.deepEqual(
    table.applyEndpoints([web("web", [endpoint("a", 1), endpoint("b", 2)])], true).addedUpstreams.map((u) => u.replica),
    ["a", "b"],
  );
  const change = table.applyEndpoints([web("web", [endpoint("b", 2), endpoint("c", 3)])], false);
  t.deepEqual(
    change.removedUpstreams.map((u) => u.replica),
    ["a"],
  );
  t.deepEqual(
    change.addedUpstreams.map((u) => u.replica),
    ["c"],
  );
  const removal = table.applyEndpoints([web("web", [], true)], false);
  t.deepEqual(
    removal.removedUpstreams.map((u) => u.replica),
    ["b", "c"],
  );
  t.is(table.current.lookup("shop.berth.localhost"), undefined, "a removed process is no longer routed");
});

test("a full snapshot forgets processes it does not list", (t) => {
  const table = createRouteTable("berth.localhost");
  table.applyEndpoints([web("web", [endpoint("a", 1)]), web("admin-web", [endpoint("b", 2)])], true);
  table.applyEndpoints([web("web", [endpoint("a", 1)])], true);
  t.truthy(table.current.lookup("shop.berth.localhost"));
  t.is(table.current.lookup("shop-admin.berth.localhost"), undefined);
});

test("custom domains route to their process, wildcards one label deep, even before the process is known", (t) => {
  const table = createRouteTable("berth.localhost");
  table.setDomains([
    { hostname: "admin.example.com", app: "shop", processType: "admin-web" },
    { hostname: "*.shop.example", app: "shop", processType: "web" },
  ]);
  t.deepEqual(table.current.lookup("admin.example.com")?.upstreams, [], "known domain, no replica yet");
  table.applyEndpoints([web("admin-web", [endpoint("a", 1)]), web("web", [endpoint("w", 2)])], true);
  t.is(table.current.lookup("admin.example.com")?.upstreams[0]?.replica, "a");
  t.is(table.current.lookup("eu.shop.example")?.upstreams[0]?.replica, "w");
  t.is(table.current.lookup("a.b.shop.example"), undefined);
  t.is(table.current.lookup("shop-admin.berth.localhost")?.upstreams[0]?.replica, "a");
});

test("waiting for an upstream resolves on the change that brings one, or times out", async (t) => {
  const table = createRouteTable("berth.localhost");
  table.applyEndpoints([web("web", [])], true);
  const waiting = table.waitForUpstream("shop/web", 60_000);
  table.applyEndpoints([web("web", [endpoint("a", 1)])], false);
  t.is((await waiting)?.upstreams[0]?.replica, "a");
  t.is(await table.waitForUpstream("shop/admin-web", 20), undefined);
  const controller = new AbortController();
  const aborted = table.waitForUpstream("shop/admin-web", 60_000, controller.signal);
  controller.abort();
  t.is(await aborted, undefined);
});

const rtc = (replicas: number, rtcRouteToken: string, endpoints: { replica: string; port: number; replicaIndex: number }[], removed = false) => ({
  team: "acme",
  app: "call",
  processType: "sfu-rtc",
  routingClass: RoutingClass.RTC,
  endpoints: endpoints.map((each) => ({ ...each, host: "127.0.0.1" })),
  removed,
  replicas,
  rtcRouteToken,
});

test("an rtc process is routed at one hostname per replica it is scaled to, each sending only to that replica", (t) => {
  const table = createRouteTable("berth.localhost");
  const a = { replica: "a", port: 1, replicaIndex: 1 };
  const b = { replica: "b", port: 2, replicaIndex: 2 };
  const replicasAt = (hostname: string) => table.current.lookup(hostname)?.upstreams.map((u) => u.replica);
  table.applyEndpoints([rtc(2, "", [a, b])], true);
  t.is(replicasAt("k1-01.berth.localhost"), undefined, "no route before the token is known");
  table.applyEndpoints([rtc(3, "k1", [a, b])], false);
  t.deepEqual(replicasAt("k1-01.berth.localhost"), ["a"]);
  t.deepEqual(replicasAt("k1-02.berth.localhost"), ["b"]);
  t.deepEqual(replicasAt("k1-03.berth.localhost"), [], "a replica not healthy yet is routed, with nothing to send to");
  t.is(table.current.lookup("call.berth.localhost"), undefined);
  table.applyEndpoints([rtc(1, "k1", [a])], false);
  t.is(replicasAt("k1-02.berth.localhost"), undefined, "scaled down");
  table.applyEndpoints([rtc(1, "k1", [a], true)], false);
  t.is(replicasAt("k1-01.berth.localhost"), undefined, "removed");
});
