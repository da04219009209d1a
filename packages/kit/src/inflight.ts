import type { Interceptor } from "@connectrpc/connect";

/**
 * Tracks the calls a server is running so that shutdown can let unary calls
 * finish while ending long-lived streams (watches, log follows) cleanly:
 * their clients reconnect to another replica instead of waiting out a grace period.
 */
export interface InflightCalls {
  readonly interceptor: Interceptor;
  /** Number of calls still running. */
  readonly count: number;
  /** Ends every open response stream with OK and refuses none of the rest. */
  endStreams(): void;
  /** Resolves when no call is running, or after `timeoutMs`. */
  drained(timeoutMs: number): Promise<boolean>;
}

/** Creates the in-flight call tracker of one server. */
export function createInflightCalls(): InflightCalls {
  let count = 0;
  let ending = false;
  const streamEnders = new Set<() => void>();
  const idleWaiters = new Set<() => void>();
  const done = () => {
    count--;
    if (count === 0) for (const wake of idleWaiters) wake();
  };
  const interceptor: Interceptor = (next) => async (request) => {
    count++;
    let response;
    try {
      response = await next(request);
    } catch (error) {
      done();
      throw error;
    }
    if (!response.stream) {
      done();
      return response;
    }
    const iterator = response.message[Symbol.asyncIterator]();
    let end: () => void = () => {};
    const ended = new Promise<IteratorReturnResult<undefined>>((resolve) => {
      end = () => resolve({ done: true, value: undefined });
    });
    streamEnders.add(end);
    if (ending) end();
    return {
      ...response,
      message: (async function* () {
        try {
          for (;;) {
            const step = await Promise.race([iterator.next(), ended]);
            if (step.done) break;
            yield step.value;
          }
        } finally {
          streamEnders.delete(end);
          // Let the handler's own finally blocks run (unsubscribe, close files).
          void iterator.return?.();
          done();
        }
      })(),
    };
  };
  return {
    interceptor,
    get count() {
      return count;
    },
    endStreams() {
      ending = true;
      for (const end of streamEnders) end();
    },
    drained(timeoutMs) {
      if (count === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          idleWaiters.delete(wake);
          resolve(true);
        };
        const timer = setTimeout(() => {
          idleWaiters.delete(wake);
          resolve(false);
        }, timeoutMs);
        idleWaiters.add(wake);
      });
    },
  };
}
