import type { Logger } from "@berth/kit";

/** Keys to reconcile, one at a time per key, again whenever they are enqueued while running. */
export interface WorkQueue {
  enqueue(key: string): void;
  /** Enqueues `key` at `atMs` (epoch ms) unless it runs earlier. */
  enqueueAt(key: string, atMs: number): void;
  /** Resolves once nothing is queued or running. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A level-triggered work queue in the manner of client-go's: events only
 * enqueue a key; the handler re-reads the current state and returns when it
 * wants to look again (a deadline), if ever. A failing handler is retried
 * with exponential backoff.
 */
export function createWorkQueue(handler: (key: string) => Promise<number | undefined>, logger: Logger, options: { maxBackoffMs: number }): WorkQueue {
  const dirty = new Set<string>();
  const running = new Map<string, Promise<void>>();
  const timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  const failures = new Map<string, number>();
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  const checkIdle = () => {
    if (dirty.size === 0 && running.size === 0) {
      for (const resolve of idleWaiters) resolve();
      idleWaiters = [];
    }
  };

  function schedule(key: string, atMs: number): void {
    const existing = timers.get(key);
    if (existing !== undefined && existing.at <= atMs) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(
      () => {
        timers.delete(key);
        queue.enqueue(key);
      },
      Math.max(0, atMs - Date.now()),
    );
    timers.set(key, { at: atMs, timer });
  }

  async function run(key: string): Promise<void> {
    dirty.delete(key);
    try {
      const next = await handler(key);
      failures.delete(key);
      if (next !== undefined && !closed) schedule(key, next);
    } catch (error) {
      const count = (failures.get(key) ?? 0) + 1;
      failures.set(key, count);
      const delay = Math.min(100 * 2 ** count, options.maxBackoffMs);
      logger.error("reconcile failed; retrying", { key, attempt: count, retryInMs: delay, error });
      if (!closed) schedule(key, Date.now() + delay);
    }
  }

  const queue: WorkQueue = {
    enqueue(key) {
      if (closed) return;
      dirty.add(key);
      if (running.has(key)) return;
      const task = (async () => {
        while (dirty.has(key) && !closed) await run(key);
      })().finally(() => {
        running.delete(key);
        checkIdle();
      });
      running.set(key, task);
    },
    enqueueAt(key, atMs) {
      if (!closed) schedule(key, atMs);
    },
    idle() {
      if (dirty.size === 0 && running.size === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async close() {
      closed = true;
      for (const { timer } of timers.values()) clearTimeout(timer);
      timers.clear();
      dirty.clear();
      await Promise.all(running.values());
    },
  };
  return queue;
}
