import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExecutionContext, TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf, holdLease, runWhileLeader, silentLogger } from "@berth/kit";
import type { Coordination, StreamEvent } from "@berth/kit";

/** Two views of the same shared state: two replicas on Redis, one instance twice in process. */
export interface CoordinationPair {
  first: Coordination;
  second: Coordination;
  close(): Promise<void>;
}

/** Opens a fresh pair whose state no other test sees. */
export type OpenCoordinationPair = (options?: { streamMaxLength?: number }) => Promise<CoordinationPair>;

/** Polls `check` until it holds; fails the test after a generous timeout. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

const unique = (what: string) => `${what}-${randomUUID()}`;
const text = (event: StreamEvent) => new TextDecoder().decode(event.payload);

async function collect(events: AsyncIterable<StreamEvent>, count: number): Promise<StreamEvent[]> {
  const received: StreamEvent[] = [];
  if (count === 0) return received;
  for await (const event of events) {
    received.push(event);
    if (received.length === count) break;
  }
  return received;
}

function assertInvalidArgument(t: ExecutionContext, error: unknown, field: string) {
  t.is(ConnectError.from(error).code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(error).map((violation) => violation.field),
    [field],
  );
}

/** The behaviour every Coordination backend must have. */
export function coordinationSuite(test: TestFn, backend: string, open: OpenCoordinationPair): void {
  const withPair = (options?: { streamMaxLength?: number }) => async (t: ExecutionContext) => {
    const pair = await open(options);
    t.teardown(() => pair.close());
    return pair;
  };
  const pairFor = withPair();

  test(`${backend}: a lease is exclusive between two holders`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("lease");
    t.true(await first.leases.acquire(name, "a", 30_000));
    t.false(await second.leases.acquire(name, "b", 30_000));
    t.true(await first.leases.acquire(name, "a", 30_000), "re-acquiring one's own lease extends it");
    t.is(await second.leases.holder(name), "a");
    t.is(await first.leases.holder(unique("free")), undefined);
  });

  test(`${backend}: an expired lease can be taken by another holder, and the old holder can no longer renew or release it`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("lease");
    t.true(await first.leases.acquire(name, "a", 100));
    await eventually(async () => (await second.leases.holder(name)) === undefined, "the lease expires");
    t.true(await second.leases.acquire(name, "b", 30_000));
    t.false(await first.leases.renew(name, "a", 30_000));
    t.false(await first.leases.release(name, "a"));
    t.is(await first.leases.holder(name), "b");
  });

  test(`${backend}: renewing keeps a lease past its first ttl`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("lease");
    t.true(await first.leases.acquire(name, "a", 200));
    t.true(await first.leases.renew(name, "a", 60_000));
    await sleep(500);
    t.is(await second.leases.holder(name), "a");
    t.false(await second.leases.acquire(name, "b", 30_000));
  });

  test(`${backend}: only the holder releases a lease`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("lease");
    t.true(await first.leases.acquire(name, "a", 30_000));
    t.false(await second.leases.release(name, "b"));
    t.false(await second.leases.renew(name, "b", 30_000));
    t.is(await first.leases.holder(name), "a");
    t.true(await first.leases.release(name, "a"));
    t.is(await second.leases.holder(name), undefined);
    t.true(await second.leases.acquire(name, "b", 30_000));
  });

  test(`${backend}: lease and rate-limit arguments are validated`, async (t) => {
    const { first } = await pairFor(t);
    assertInvalidArgument(t, await t.throwsAsync(first.leases.acquire("", "a", 1000)), "name");
    assertInvalidArgument(t, await t.throwsAsync(first.leases.acquire("x", "", 1000)), "holder");
    assertInvalidArgument(t, await t.throwsAsync(first.leases.acquire("x", "a", 0)), "ttlMs");
    assertInvalidArgument(t, await t.throwsAsync(first.leases.renew("x", "a", 1.5)), "ttlMs");
    assertInvalidArgument(t, await t.throwsAsync(first.rateLimits.take("k", 0, 1000)), "limit");
    assertInvalidArgument(t, await t.throwsAsync(first.rateLimits.take("k", 1, -1)), "windowMs");
    assertInvalidArgument(t, await t.throwsAsync(first.rateLimits.take("", 1, 1000)), "key");
  });

  test(`${backend}: events replay from an id in order, across instances`, async (t) => {
    const { first, second } = await pairFor(t);
    const stream = unique("stream");
    const ids: string[] = [];
    for (const word of ["zero", "one", "two", "three", "four"]) ids.push(await first.events.publish(stream, word));
    const replayed = await collect(second.events.subscribe(stream, { after: ids[1], signal: new AbortController().signal }), 3);
    t.deepEqual(
      replayed.map((event) => [event.id, text(event)]),
      [
        [ids[2], "two"],
        [ids[3], "three"],
        [ids[4], "four"],
      ],
    );
    const fromStart = await collect(second.events.subscribe(stream, { after: "0", signal: new AbortController().signal }), 5);
    t.deepEqual(
      fromStart.map((event) => event.id),
      ids,
    );
  });

  test(`${backend}: a live subscriber receives only events published after it subscribed`, async (t) => {
    const { first, second } = await pairFor(t);
    const stream = unique("stream");
    await first.events.publish(stream, "before");
    const events = first.events.subscribe(stream, { signal: new AbortController().signal });
    await first.events.publish(stream, "right after");
    const received = collect(events, 2);
    await second.events.publish(stream, "later, from the other instance");
    t.deepEqual((await received).map(text), ["right after", "later, from the other instance"]);
  });

  test(`${backend}: a blocked subscriber is woken by a publish`, async (t) => {
    const { first, second } = await pairFor(t);
    const stream = unique("stream");
    const iterator = first.events.subscribe(stream, { after: "$", signal: new AbortController().signal })[Symbol.asyncIterator]();
    const next = iterator.next();
    // Let the read reach its blocking wait before publishing.
    await sleep(100);
    const id = await second.events.publish(stream, "wake up");
    const result = await next;
    t.false(result.done);
    t.is(result.value.id, id);
    t.is(text(result.value), "wake up");
    await iterator.return!();
  });

  test(`${backend}: aborting ends a blocked iterator`, async (t) => {
    const { first } = await pairFor(t);
    const controller = new AbortController();
    const iterator = first.events.subscribe(unique("stream"), { signal: controller.signal })[Symbol.asyncIterator]();
    const next = iterator.next();
    await sleep(100);
    controller.abort();
    t.deepEqual(await next, { done: true, value: undefined });
    const afterAbort = first.events.subscribe(unique("stream"), { signal: controller.signal });
    t.deepEqual(await collect(afterAbort, 1), [], "a subscription with an aborted signal ends at once");
  });

  test(`${backend}: closing ends subscriptions`, async (t) => {
    const pair = await open();
    t.teardown(() => pair.close());
    const { first } = pair;
    const iterator = first.events.subscribe(unique("stream"), { signal: new AbortController().signal })[Symbol.asyncIterator]();
    const next = iterator.next();
    await sleep(100);
    await first.close();
    t.deepEqual(await next, { done: true, value: undefined });
    await first.close();
  });

  test(`${backend}: payloads keep their bytes, and strings are UTF-8`, async (t) => {
    const { first, second } = await pairFor(t);
    const stream = unique("stream");
    const bytes = new Uint8Array([0, 1, 127, 128, 255, 0]);
    await first.events.publish(stream, bytes);
    await first.events.publish(stream, "é ✓");
    const [binary, utf8] = await collect(second.events.subscribe(stream, { after: "0", signal: new AbortController().signal }), 2);
    t.deepEqual(new Uint8Array(binary!.payload), bytes);
    t.deepEqual(new Uint8Array(utf8!.payload), new Uint8Array(Buffer.from("é ✓", "utf8")));
  });

  test(`${backend}: concurrent publishes get distinct, increasing ids and replay in that order`, async (t) => {
    const { first, second } = await pairFor(t);
    const stream = unique("stream");
    const published = await Promise.all(Array.from({ length: 40 }, (_, index) => (index % 2 ? first : second).events.publish(stream, String(index))));
    const replayed = await collect(first.events.subscribe(stream, { after: "0", signal: new AbortController().signal }), 40);
    const ids = replayed.map((event) => event.id);
    t.deepEqual([...ids].sort(), [...published].sort());
    t.is(new Set(ids).size, 40);
    const parts = ids.map((id) => id.split("-").map(Number) as [number, number]);
    for (let index = 1; index < parts.length; index++) {
      const [milliseconds, sequence] = parts[index]!;
      const [previousMilliseconds, previousSequence] = parts[index - 1]!;
      t.true(milliseconds >= previousMilliseconds && sequence === previousSequence + 1, `${ids[index - 1]} then ${ids[index]}`);
    }
  });

  test(`${backend}: retention keeps the newest events and a subscriber past what was trimmed gets OUT_OF_RANGE`, async (t) => {
    const { first, second } = await withPair({ streamMaxLength: 5 })(t);
    const stream = unique("stream");
    const signal = new AbortController().signal;
    const fellBehind = first.events.subscribe(stream, { signal })[Symbol.asyncIterator]();
    const ids: string[] = [];
    for (let index = 0; index < 250; index++) ids.push(await second.events.publish(stream, String(index)));

    const retained: StreamEvent[] = [];
    const iterator = first.events.subscribe(stream, { after: "0", signal })[Symbol.asyncIterator]();
    while (retained.at(-1)?.id !== ids.at(-1)) retained.push((await iterator.next()).value as StreamEvent);
    await iterator.return!();
    t.true(retained.length >= 5 && retained.length < 250, `${retained.length} events retained`);
    t.deepEqual(retained.slice(-5).map(text), ["245", "246", "247", "248", "249"]);

    const resumed = await t.throwsAsync(collect(second.events.subscribe(stream, { after: ids[0], signal }), 1));
    t.is(ConnectError.from(resumed).code, Code.OutOfRange);
    const behind = await t.throwsAsync(fellBehind.next());
    t.is(ConnectError.from(behind).code, Code.OutOfRange);
    const caughtUp = await collect(second.events.subscribe(stream, { after: ids[248], signal }), 1);
    t.is(caughtUp[0]?.id, ids[249], "a subscriber whose next event is retained is not refused");
  });

  test(`${backend}: subscribe validates the stream and position`, async (t) => {
    const { first } = await pairFor(t);
    const signal = new AbortController().signal;
    assertInvalidArgument(
      t,
      t.throws(() => first.events.subscribe("s", { after: "yesterday", signal })),
      "after",
    );
    assertInvalidArgument(
      t,
      t.throws(() => first.events.subscribe("", { signal })),
      "stream",
    );
    assertInvalidArgument(t, await t.throwsAsync(first.events.publish("", "x")), "stream");
  });

  test(`${backend}: a rate limit allows limit calls, refuses with a retry delay, and allows again after the window`, async (t) => {
    const { first, second } = await pairFor(t);
    const key = unique("key");
    t.deepEqual(await first.rateLimits.take(key, 3, 500), { allowed: true, remaining: 2, retryAfterMs: 0 });
    t.deepEqual(await second.rateLimits.take(key, 3, 500), { allowed: true, remaining: 1, retryAfterMs: 0 });
    t.deepEqual(await first.rateLimits.take(key, 3, 500), { allowed: true, remaining: 0, retryAfterMs: 0 });
    const refused = await second.rateLimits.take(key, 3, 500);
    t.false(refused.allowed);
    t.is(refused.remaining, 0);
    t.true(refused.retryAfterMs > 0 && refused.retryAfterMs <= 500, `retryAfterMs ${refused.retryAfterMs}`);
    t.true((await first.rateLimits.take(unique("other-key"), 3, 500)).allowed, "keys are independent");
    await sleep(refused.retryAfterMs + 20);
    t.true((await first.rateLimits.take(key, 3, 500)).allowed);
  });

  test(`${backend}: a held lease is renewed past its ttl, and released on abort`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("lease");
    const controller = new AbortController();
    const held = await holdLease({ leases: first.leases, name, holder: "a", ttlMs: 1_000, signal: controller.signal });
    t.truthy(held);
    await sleep(2_200);
    t.false(held!.signal.aborted);
    t.is(await second.leases.holder(name), "a");
    t.is(await holdLease({ leases: second.leases, name, holder: "b", ttlMs: 1_000 }), undefined);
    controller.abort();
    await eventually(async () => (await second.leases.holder(name)) === undefined, "the lease is released");
    t.is(ConnectError.from(held!.signal.reason).code, Code.Canceled);
  });

  test(`${backend}: losing a held lease aborts its signal`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("lease");
    const held = await holdLease({ leases: first.leases, name, holder: "a", ttlMs: 600 });
    t.truthy(held);
    t.teardown(() => held!.release());
    const lost = new Promise<unknown>((resolve) => held!.signal.addEventListener("abort", () => resolve(held!.signal.reason)));
    // Someone else takes the lease behind the holder's back.
    t.true(await second.leases.release(name, "a"));
    t.true(await second.leases.acquire(name, "b", 30_000));
    t.is(ConnectError.from(await lost).code, Code.Aborted);
    await held!.release();
    t.is(await first.leases.holder(name), "b", "releasing a lost lease leaves the new holder alone");
  });

  test(`${backend}: one campaigner leads at a time and another takes over when it stops`, async (t) => {
    const { first, second } = await pairFor(t);
    const name = unique("leader");
    const leading = new Set<string>();
    const started: string[] = [];
    const campaign = (coordination: Coordination, holder: string) => {
      const controller = new AbortController();
      const done = runWhileLeader(
        { leases: coordination.leases, name, holder, ttlMs: 600, signal: controller.signal, logger: silentLogger },
        async (leadership) => {
          t.is(leading.size, 0, "nobody else leads");
          leading.add(holder);
          started.push(holder);
          await new Promise((resolve) => leadership.addEventListener("abort", resolve));
          leading.delete(holder);
        },
      );
      return { controller, done };
    };
    const campaigns = { a: campaign(first, "a"), b: campaign(second, "b") };
    await eventually(() => started.length === 1, "someone leads");
    const leader = started[0] as "a" | "b";
    const follower = leader === "a" ? "b" : "a";
    t.is(await first.leases.holder(name), leader);
    campaigns[leader].controller.abort();
    await campaigns[leader].done;
    await eventually(() => started.length === 2, "the other campaigner takes over");
    t.deepEqual(started, [leader, follower]);
    campaigns[follower].controller.abort();
    await campaigns[follower].done;
    t.is(await first.leases.holder(name), undefined);
  });
}
