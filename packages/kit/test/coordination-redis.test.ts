import { randomUUID } from "node:crypto";
import test from "ava";
import { Redis } from "ioredis";
import { Code, ConnectError } from "@connectrpc/connect";
import { createCoordination, fieldViolationsOf } from "@berth/kit";
import { coordinationSuite, eventually } from "./support/coordination-suite.js";
import { testRedisUrl } from "@berth/kit/testing";

const REDIS_URL = testRedisUrl;
// Every key of this run lives under one prefix, deleted when the run ends.
const RUN_PREFIX = `berth-test:${randomUUID()}:`;
const admin = new Redis(REDIS_URL);
let pairs = 0;
const freshPrefix = () => `${RUN_PREFIX}${++pairs}:`;

test.after.always(async () => {
  let cursor = "0";
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${RUN_PREFIX}*`, "COUNT", 1000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  await admin.quit();
});

coordinationSuite(test, "redis", async (options) => {
  const keyPrefix = freshPrefix();
  const first = createCoordination({ redisUrl: REDIS_URL, keyPrefix, ...options });
  const second = createCoordination({ redisUrl: REDIS_URL, keyPrefix, ...options });
  return { first, second, close: async () => void (await Promise.all([first.close(), second.close()])) };
});

async function connectionsNamed(name: string): Promise<string[]> {
  const list = await admin.client("LIST");
  return String(list)
    .split("\n")
    .filter((line) => line.includes(` name=${name} `));
}

test("redis: aborted and closed subscriptions leave no connection behind", async (t) => {
  const keyPrefix = freshPrefix();
  const coordination = createCoordination({ redisUrl: REDIS_URL, keyPrefix });
  t.teardown(() => coordination.close());
  const subscriberName = `berth:${keyPrefix}:subscriber`;
  const controllers = [new AbortController(), new AbortController(), new AbortController()];
  const pending = controllers.map((controller) => coordination.events.subscribe("s", { signal: controller.signal })[Symbol.asyncIterator]().next());
  await eventually(async () => (await connectionsNamed(subscriberName)).length === 3, "three subscribers are connected");
  controllers[0]!.abort();
  t.deepEqual(await pending[0], { done: true, value: undefined });
  await eventually(async () => (await connectionsNamed(subscriberName)).length === 2, "the aborted subscriber disconnects");
  await coordination.close();
  t.deepEqual(await Promise.all(pending.slice(1)), [
    { done: true, value: undefined },
    { done: true, value: undefined },
  ]);
  await eventually(async () => (await connectionsNamed(`berth:${keyPrefix}`)).length === 0, "the command connection closes");
  await eventually(async () => (await connectionsNamed(subscriberName)).length === 0, "every subscriber disconnects");
});

test("redis: a subscriber whose connection is killed reconnects and misses nothing", async (t) => {
  const keyPrefix = freshPrefix();
  const coordination = createCoordination({ redisUrl: REDIS_URL, keyPrefix });
  t.teardown(() => coordination.close());
  const subscriberName = `berth:${keyPrefix}:subscriber`;
  const iterator = coordination.events.subscribe("s", { signal: new AbortController().signal })[Symbol.asyncIterator]();
  const next = iterator.next();
  await eventually(async () => (await connectionsNamed(subscriberName)).length === 1, "the subscriber is connected");
  const [line] = await connectionsNamed(subscriberName);
  const id = /\bid=(\d+)/.exec(line!)![1]!;
  await admin.client("KILL", "ID", id);
  const published = await coordination.events.publish("s", "while reconnecting");
  const first = await next;
  t.is(first.value?.id, published);
  await iterator.return!();
});

test("redis: a subscriber resuming on a stream that Redis lost (restarted empty) gets OUT_OF_RANGE", async (t) => {
  const keyPrefix = freshPrefix();
  const coordination = createCoordination({ redisUrl: REDIS_URL, keyPrefix });
  t.teardown(() => coordination.close());
  let last = "";
  for (const word of ["a", "b", "c"]) last = await coordination.events.publish("s", word);
  await admin.del(`${keyPrefix}stream:s`);
  // A real restart takes longer than a millisecond; ids after it start from Redis's clock.
  const lastMilliseconds = Number(last.split("-")[0]);
  await eventually(async () => {
    const [seconds, microseconds] = await admin.time();
    return Number(seconds) * 1000 + Math.floor(Number(microseconds) / 1000) > lastMilliseconds;
  }, "Redis's clock passes the last id");
  const resumed = coordination.events.subscribe("s", { after: last, signal: new AbortController().signal })[Symbol.asyncIterator]();
  const next = resumed.next();
  await coordination.events.publish("s", "after the loss");
  const error = await t.throwsAsync(next);
  t.is(ConnectError.from(error).code, Code.OutOfRange);
});

test("redis: createCoordination uses Redis when redisUrl is set and keeps keys under the prefix", async (t) => {
  const keyPrefix = freshPrefix();
  const coordination = createCoordination({ redisUrl: REDIS_URL, keyPrefix });
  t.teardown(() => coordination.close());
  t.true(await coordination.leases.acquire("leader", "a", 30_000));
  t.is(await admin.get(`${keyPrefix}lease:leader`), "a");
  const ttl = await admin.pttl(`${keyPrefix}lease:leader`);
  t.true(ttl > 0 && ttl <= 30_000, `pttl ${ttl}`);
  await coordination.events.publish("changes", "x");
  t.is(await admin.xlen(`${keyPrefix}stream:changes`), 1);
});

test("createCoordination refuses a malformed redisUrl or retention", (t) => {
  for (const redisUrl of ["127.0.0.1:6379", "http://127.0.0.1:6379", "not a url"]) {
    const error = t.throws(() => createCoordination({ redisUrl }));
    t.is(ConnectError.from(error).code, Code.InvalidArgument);
    t.deepEqual(
      fieldViolationsOf(error).map((violation) => violation.field),
      ["redisUrl"],
    );
  }
  const error = t.throws(() => createCoordination({ streamMaxLength: 0 }));
  t.deepEqual(
    fieldViolationsOf(error).map((violation) => violation.field),
    ["streamMaxLength"],
  );
});
