import { ConnectError } from "@connectrpc/connect";
import type { CallOptions, HandlerContext } from "@connectrpc/connect";

/**
 * Reads of a peer shared between the calls that want the same key at the
 * same time. A caller never gets an answer read before it asked: it joins
 * only a read that has not started yet, the one that follows the read under
 * way. The answer is shared, so callers must not change it.
 */
export interface SharedReads<T> {
  read(key: string, ctx: HandlerContext): Promise<T>;
}

interface Batch<T> {
  /** Callers still waiting for the answer; the read is cancelled when none is left. */
  callers: number;
  /** The latest deadline among the callers, on the performance clock. */
  deadline: number;
  readonly controller: AbortController;
  readonly answer: Promise<T>;
  settle(read: Promise<T>): void;
}

function createBatch<T>(): Batch<T> {
  let settle!: (read: Promise<T>) => void;
  const answer = new Promise<T>((resolve) => (settle = resolve));
  // A batch whose every caller gave up may still fail; nobody is left to see it.
  answer.catch(() => {});
  return { callers: 0, deadline: 0, controller: new AbortController(), answer, settle };
}

/**
 * Creates shared reads over `read`, which receives the cancellation of the
 * batch (when every caller gave up) and the latest deadline of its callers;
 * `defaultTimeoutMs` stands for a caller without a deadline.
 */
export function createSharedReads<T>(read: (key: string, options: CallOptions) => Promise<T>, defaultTimeoutMs: number): SharedReads<T> {
  const running = new Set<string>();
  const waiting = new Map<string, Batch<T>>();

  function start(key: string, batch: Batch<T>): void {
    running.add(key);
    const timeoutMs = Math.max(1, Math.ceil(batch.deadline - performance.now()));
    let call: Promise<T>;
    try {
      call = read(key, { signal: batch.controller.signal, timeoutMs });
    } catch (error) {
      // A read that throws at once must fail its batch, not leave the key busy for ever.
      call = Promise.reject(error);
    }
    batch.settle(call);
    void call.then(
      () => next(key),
      () => next(key),
    );
  }

  function next(key: string): void {
    running.delete(key);
    const batch = waiting.get(key);
    if (batch === undefined) return;
    waiting.delete(key);
    start(key, batch);
  }

  return {
    async read(key, ctx) {
      if (ctx.signal.aborted) throw ConnectError.from(ctx.signal.reason);
      let batch = waiting.get(key);
      const startNow = batch === undefined && !running.has(key);
      if (batch === undefined) {
        batch = createBatch<T>();
        if (!startNow) waiting.set(key, batch);
      }
      const joined = batch;
      joined.callers++;
      joined.deadline = Math.max(joined.deadline, performance.now() + (ctx.timeoutMs() ?? defaultTimeoutMs));
      if (startNow) start(key, joined);
      let leave!: () => void;
      const left = new Promise<never>((_, reject) => {
        leave = () => {
          joined.callers--;
          if (joined.callers === 0) {
            if (waiting.get(key) === joined) waiting.delete(key);
            joined.controller.abort(ctx.signal.reason);
          }
          reject(ConnectError.from(ctx.signal.reason));
        };
      });
      ctx.signal.addEventListener("abort", leave, { once: true });
      try {
        return await Promise.race([joined.answer, left]);
      } finally {
        ctx.signal.removeEventListener("abort", leave);
      }
    },
  };
}
