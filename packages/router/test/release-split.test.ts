import test from "ava";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { chooseRelease, releaseCookie, releaseFromCookies, releaseSide } from "../src/proxy/release-split.js";
import { createRouteTable } from "../src/route-table.js";

const endpoint = (replica: string, port: number, releaseVersion: number) => ({ replica, host: "127.0.0.1", port, releaseVersion });

function splitTarget(percent: number, endpoints = [endpoint("old-a", 1, 1), endpoint("old-b", 2, 1), endpoint("new", 3, 2)]) {
  const table = createRouteTable("berth.localhost");
  table.applyEndpoints(
    [{ team: "acme", app: "shop", processType: "web", routingClass: RoutingClass.WEB, endpoints, removed: false, canary: { releaseVersion: 2, percent } }],
    true,
  );
  return table.current.lookup("shop.berth.localhost")!;
}

test("the release cookie is read among others, and anything but a version is ignored", (t) => {
  t.is(releaseFromCookies("a=1; berth-release=7; b=2"), 7);
  t.is(releaseFromCookies("berth-release=0"), 0);
  t.is(releaseFromCookies("berth-release=7x"), 0);
  t.is(releaseFromCookies("xberth-release=7"), 0);
  t.is(releaseFromCookies(undefined), 0);
  t.is(releaseCookie(7), "berth-release=7; Path=/; HttpOnly; SameSite=Lax");
});

test("a split target holds the canary's replicas and the serving ones apart", (t) => {
  const target = splitTarget(10);
  t.deepEqual(
    target.split?.canary.upstreams.map((upstream) => upstream.replica),
    ["new"],
  );
  t.deepEqual(
    target.split?.serving.upstreams.map((upstream) => upstream.replica),
    ["old-a", "old-b"],
  );
  t.is(target.split?.serving.release, 1);
  t.deepEqual(
    releaseSide(target, 2).upstreams.map((upstream) => upstream.replica),
    ["new"],
  );
  t.is(releaseSide(target, 0), target);
});

test("a client without a cookie goes to the canary with its share of probability, and is told which release it got", (t) => {
  const target = splitTarget(10);
  t.deepEqual(
    chooseRelease(target, 0, () => 0.099),
    { release: 2, setCookie: 2 },
  );
  t.deepEqual(
    chooseRelease(target, 0, () => 0.1),
    { release: 1, setCookie: 1 },
  );
});

test("a client with a cookie stays on its release while that release has replicas", (t) => {
  const target = splitTarget(10);
  t.deepEqual(
    chooseRelease(target, 2, () => 0.99),
    { release: 2, setCookie: 0 },
  );
  t.deepEqual(
    chooseRelease(target, 1, () => 0),
    { release: 1, setCookie: 0 },
  );
  // A release that no longer serves: chosen again, and told.
  t.deepEqual(
    chooseRelease(target, 9, () => 0),
    { release: 2, setCookie: 2 },
  );
});

test("a canary with no share yet, or no replica, gets no request, and no client is kept on a release then", (t) => {
  t.deepEqual(
    chooseRelease(splitTarget(0), 0, () => 0),
    { release: 1, setCookie: 0 },
  );
  t.deepEqual(
    chooseRelease(splitTarget(0), 2, () => 0),
    { release: 1, setCookie: 0 },
  );
  t.deepEqual(
    chooseRelease(splitTarget(10, [endpoint("old-a", 1, 1)]), 2, () => 0),
    { release: 1, setCookie: 0 },
  );
});

test("no client is kept on a release when only the canary has replicas, or there is no split", (t) => {
  t.deepEqual(
    chooseRelease(splitTarget(10, [endpoint("new", 3, 2)]), 0, () => 0),
    { release: 0, setCookie: 0 },
  );
  const table = createRouteTable("berth.localhost");
  table.applyEndpoints(
    [{ team: "acme", app: "shop", processType: "web", routingClass: RoutingClass.WEB, endpoints: [endpoint("a", 1, 1)], removed: false }],
    true,
  );
  t.deepEqual(
    chooseRelease(table.current.lookup("shop.berth.localhost")!, 1, () => 0),
    { release: 0, setCookie: 0 },
  );
});
