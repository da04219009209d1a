import type { Logger } from "./logger.js";

/**
 * A level-triggered reconcile loop: every kick runs a pass that re-reads the
 * desired state and converges on it. One pass runs at a time; kicks that
 * arrive during a pass coalesce into one more pass. A failed pass is retried
 * with backoff.
 */
export interface ReconcileLoop {
  /** Resolves when a pass that started after this call has finished (at once while inactive or closed). */
  kick(): Promise<void>;
  /** Kicks once after `ms`, replacing the wake-up set before; undefined only cancels it. */
  wakeIn(ms: number | undefined): void;
  /** Resolves once no pass is running (passes kicked meanwhile included). */
  idle(): Promise<void>;
  /** No pass starts after this; a wake-up set is cancelled. */
  close(): void;
}

/** Options of createReconcileLoop. */
export interface ReconcileLoopOptions {
  /** What the loop reconciles, for the log ("route", "gateway"). */
  name: string;
  /** One pass; a throw is logged and retried. */
  pass(): Promise<void>;
  logger: Logger;
  /** First retry after a failed pass, doubling up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
  /** While it answers false (another instance leads), kicks run nothing. */
  active?: () => boolean;
}

/** Creates the loop; nothing runs until the first kick. */
export function createReconcileLoop(options: ReconcileLoopOptions): ReconcileLoop {
  const initialRetry = options.retryMs ?? 1_000;
  const maxRetry = options.maxRetryMs ?? 60_000;
  let retry = initialRetry;
  let closed = false;
  let running: Promise<void> | undefined;
  let pending: Promise<void> | undefined;
  let wakeTimer: NodeJS.Timeout | undefined;

  function wakeIn(ms: number | undefined): void {
    clearTimeout(wakeTimer);
    wakeTimer = ms === undefined || closed ? undefined : setTimeout(() => void kick(), ms);
    // A wake-up alone never keeps the process alive: whoever owns the loop closes it on shutdown, or exits.
    wakeTimer?.unref();
  }

  async function run(): Promise<void> {
    try {
      await options.pass();
      retry = initialRetry;
    } catch (error) {
      options.logger.warn(`${options.name} reconcile failed; retrying`, { error, inMs: retry });
      wakeIn(retry);
      retry = Math.min(maxRetry, retry * 2);
    }
  }

  function kick(): Promise<void> {
    if (closed || options.active?.() === false) return Promise.resolve();
    if (!running) {
      running = run().finally(() => (running = undefined));
      return running;
    }
    pending ??= running.then(() => {
      pending = undefined;
      return kick();
    });
    return pending;
  }

  return {
    kick,
    wakeIn,
    async idle() {
      while (running) await (pending ?? running);
    },
    close() {
      closed = true;
      wakeIn(undefined);
    },
  };
}
