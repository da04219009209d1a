import test from "ava";
import { createReconcileLoop, silentLogger } from "../src/index.js";

/** A pass that counts its runs and holds each one until released. */
function heldPasses() {
  let runs = 0;
  let release: (() => void) | undefined;
  return {
    get runs() {
      return runs;
    },
    async pass() {
      runs++;
      await new Promise<void>((resolve) => (release = resolve));
    },
    release() {
      release?.();
      release = undefined;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("one pass at a time: kicks during a pass coalesce into exactly one more, which each of them waits for", async (t) => {
  const passes = heldPasses();
  const loop = createReconcileLoop({ name: "test", pass: () => passes.pass(), logger: silentLogger });
  const first = loop.kick();
  await tick();
  const later = [loop.kick(), loop.kick(), loop.kick()];
  await tick();
  t.is(passes.runs, 1, "no second pass while the first runs");
  passes.release();
  await first;
  await tick();
  t.is(passes.runs, 2, "the kicks made during the first pass run one more");
  let settled = false;
  void Promise.all(later).then(() => (settled = true));
  await tick();
  t.false(settled, "a kick resolves only once a pass that started after it has finished");
  passes.release();
  await Promise.all(later);
  await loop.idle();
  t.is(passes.runs, 2);
  loop.close();
});

test("a failed pass is retried with doubling delays; a success resets them; nothing runs while inactive or after close", async (t) => {
  let runs = 0;
  let failures = 3;
  const times: number[] = [];
  let active = true;
  const loop = createReconcileLoop({
    name: "test",
    logger: silentLogger,
    retryMs: 20,
    active: () => active,
    async pass() {
      runs++;
      times.push(performance.now());
      if (failures-- > 0) throw new Error("not yet");
    },
  });
  await loop.kick();
  while (runs < 4) await new Promise((resolve) => setTimeout(resolve, 10));
  const gaps = times.slice(1).map((at, index) => at - times[index]!);
  t.true(gaps[0]! >= 19 && gaps[1]! >= 39 && gaps[2]! >= 79, `retry gaps ${gaps.map((gap) => gap.toFixed(0)).join(", ")}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(runs, 4, "no retry after the pass succeeded");

  active = false;
  await loop.kick();
  t.is(runs, 4, "an inactive loop runs nothing");
  active = true;
  loop.wakeIn(10);
  loop.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  await loop.kick();
  t.is(runs, 4, "close cancels the wake-up and later kicks");
});
