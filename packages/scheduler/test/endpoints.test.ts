import test from "ava";
import type { ExecutionContext } from "ava";
import { openDatabase, silentLogger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { createEndpointHub } from "../src/endpoints.js";
import { MIGRATIONS } from "../src/store/migrations.js";
import { DATABASE_URL, isolation } from "./support/scheduler-harness.js";

async function hubOn(t: ExecutionContext, schema: string, timeouts: { consumerTimeoutMs?: number; ackTimeoutMs?: number; drainTimeoutMs?: number } = {}) {
  const db = await openDatabase({ service: "scheduler", schema, migrations: MIGRATIONS, databaseUrl: DATABASE_URL });
  t.teardown(() => db.close());
  const hub = await createEndpointHub({ db, logger: silentLogger, consumerTimeoutMs: 60_000, ackTimeoutMs: 60_000, drainTimeoutMs: 60_000, ...timeouts });
  t.teardown(() => hub.close());
  return hub;
}

function consume(t: ExecutionContext, hub: Awaited<ReturnType<typeof hubOn>>, consumer: string) {
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const messages: WatchEndpointsResponse[] = [];
  const iterator = hub.watch(consumer, controller.signal)[Symbol.asyncIterator]();
  return {
    messages,
    controller,
    async next(): Promise<WatchEndpointsResponse> {
      const { value } = await iterator.next();
      messages.push(value!);
      return value!;
    },
    async end(): Promise<void> {
      controller.abort();
      await iterator.next();
    },
  };
}

const web = (replicas: string[]) => ({
  processType: "web",
  routingClass: RoutingClass.WEB,
  endpoints: replicas.map((replica, i) => ({ replica, host: "127.0.0.1", port: 5000 + i, zone: "zone-a", releaseVersion: 1, replicaIndex: i + 1 })),
  replicas: replicas.length,
  rtcRouteToken: "",
});

const rtc = (replicas: number, rtcRouteToken: string, healthy = replicas) => ({
  ...web(Array.from({ length: healthy }, (_, i) => `sfu-${i + 1}`)),
  processType: "sfu-rtc",
  routingClass: RoutingClass.RTC,
  replicas,
  rtcRouteToken,
});

test("an rtc set carries its route token, replica count and replica indexes; a change of any is a new generation", async (t) => {
  const hub = await hubOn(t, (await isolation(t)).schema);
  const g1 = await hub.publish("call", "acme", [rtc(2, "")]);
  const g2 = await hub.publish("call", "acme", [rtc(2, "k3token")]);
  t.is(g2, g1 + 1, "the token becoming known is published");
  const g3 = await hub.publish("call", "acme", [rtc(3, "k3token", 2)]);
  t.is(g3, g2 + 1, "a scale-up is published before the new replica is healthy");
  t.is(await hub.publish("call", "acme", [rtc(3, "k3token", 2)]), g3);
  const router = consume(t, hub, "router-0");
  const [set] = (await router.next()).processes;
  t.is(set?.rtcRouteToken, "k3token");
  t.is(set?.replicas, 3);
  t.deepEqual(
    set?.endpoints.map((endpoint) => [endpoint.replica, endpoint.replicaIndex]),
    [
      ["sfu-1", 1],
      ["sfu-2", 2],
    ],
  );
});

test("a consumer gets a snapshot, then only changes, each a new generation; removed types are flagged", async (t) => {
  const hub = await hubOn(t, (await isolation(t)).schema);
  const g1 = await hub.publish("shop", "acme", [web(["a"])]);
  const router = consume(t, hub, "router-0");
  const snapshot = await router.next();
  t.true(snapshot.snapshot);
  t.is(snapshot.generation, BigInt(g1));
  t.deepEqual(
    snapshot.processes.map((p) => [p.app, p.team, p.processType, p.endpoints.map((e) => e.replica)]),
    [["shop", "acme", "web", ["a"]]],
  );
  t.is(await hub.publish("shop", "acme", [web(["a"])]), g1, "an unchanged set makes no generation");
  const g2 = await hub.publish("shop", "acme", [web(["a", "b"])]);
  t.is(g2, g1 + 1);
  const change = await router.next();
  t.false(change.snapshot);
  t.deepEqual(
    change.processes[0]!.endpoints.map((e) => e.replica),
    ["a", "b"],
  );
  await hub.removeApp("shop");
  const removal = await router.next();
  t.true(removal.processes[0]!.removed);
  t.is(removal.processes[0]!.team, "acme");
});

test("a retirement waits for every connected consumer's acknowledgement, and passes over one that never answers", async (t) => {
  const hub = await hubOn(t, (await isolation(t)).schema, { ackTimeoutMs: 200 });
  const router = consume(t, hub, "router-0");
  await router.next();
  const generation = await hub.publish("shop", "acme", [web([])]);
  const since = Date.now();
  const waiting = await hub.ackStatus(generation, since);
  t.false(waiting.done);
  t.true(!waiting.done && waiting.recheckAt === since + 200);
  await hub.ack("router-0", generation);
  t.deepEqual(await hub.ackStatus(generation, since), { done: true });
  const next = await hub.publish("shop", "acme", [web(["c"])]);
  t.deepEqual(await hub.ackStatus(next, Date.now() - 500), { done: true }, "past the ack timeout");
});

test("a consumer whose stream is gone is waited for until the consumer timeout, then forgotten, also across a restart", async (t) => {
  const { schema } = await isolation(t);
  const hub = await hubOn(t, schema, { consumerTimeoutMs: 300 });
  const router = consume(t, hub, "router-0");
  await router.next();
  await router.end();
  const generation = await hub.publish("shop", "acme", [web(["a"])]);
  t.false((await hub.ackStatus(generation, Date.now())).done);
  await new Promise((resolve) => setTimeout(resolve, 350));
  t.deepEqual(await hub.ackStatus(generation, Date.now()), { done: true });

  // A consumer seen before a restart is waited for by the next run as well.
  const before = await hubOn(t, schema, { consumerTimeoutMs: 300 });
  const other = consume(t, before, "router-1");
  await other.next();
  const restarted = await hubOn(t, schema, { consumerTimeoutMs: 300 });
  const later = await restarted.publish("shop", "acme", [web(["b"])]);
  t.false((await restarted.ackStatus(later, Date.now())).done);
  const back = consume(t, restarted, "router-1");
  await back.next();
  await restarted.ack("router-1", later);
  t.deepEqual(await restarted.ackStatus(later, Date.now()), { done: true });
});

test("a drain ends when every connected consumer reported the replica drained, or at the drain timeout", async (t) => {
  const hub = await hubOn(t, (await isolation(t)).schema, { drainTimeoutMs: 1000 });
  const first = consume(t, hub, "router-0");
  const second = consume(t, hub, "router-1");
  await first.next();
  await second.next();
  await hub.publish("shop", "acme", [web(["a", "b"])]);
  await hub.publish("shop", "acme", [web([])]);
  const since = Date.now();
  t.false(hub.drainStatus("a", since).done);
  hub.reportDrained("router-0", ["a"]);
  t.false(hub.drainStatus("a", since).done);
  hub.reportDrained("router-1", ["a"]);
  t.true(hub.drainStatus("a", since).done);
  t.true(hub.drainStatus("b", since - 1000).done, "the timeout ends it");
});

test("a replica that was never published is not waited for to drain: no router can hold a connection to it", async (t) => {
  const hub = await hubOn(t, (await isolation(t)).schema, { drainTimeoutMs: 600_000 });
  const router = consume(t, hub, "router-0");
  await router.next();
  // "never" is a replica of a release that never got healthy, retired by a rollback.
  await hub.publish("shop", "acme", [web(["served"])]);
  await hub.publish("shop", "acme", [web([])]);
  const since = Date.now();
  t.true(hub.drainStatus("never", since).done);
  t.false(hub.drainStatus("served", since).done, "a replica that served waits for the router's drain report");
  hub.forgetReplica("served");
  t.true(hub.drainStatus("served", since).done, "a stopped replica is forgotten");
});
