/**
 * Hands what a producer pushes (a command's output) to one async consumer,
 * in order. `room()` resolves once the consumer has caught up, so a producer
 * that waits on it (a paused pipe, a delayed write callback) never grows
 * memory beyond `highWater` items when the consumer is slow.
 */
export interface ChunkQueue<T> {
  push(item: T): void;
  /** No more items: the consumer's loop ends after the ones still queued. */
  end(): void;
  /** Resolves once fewer than `highWater` items wait. */
  room(): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterator<T>;
}

export function createChunkQueue<T>(highWater = 64): ChunkQueue<T> {
  const items: T[] = [];
  let ended = false;
  let wakeConsumer: (() => void) | undefined;
  let roomWaiters: (() => void)[] = [];
  const wake = () => {
    wakeConsumer?.();
    wakeConsumer = undefined;
  };
  return {
    push(item) {
      items.push(item);
      wake();
    },
    end() {
      ended = true;
      wake();
    },
    room() {
      return items.length < highWater ? Promise.resolve() : new Promise((resolve) => roomWaiters.push(resolve));
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (items.length > 0) {
          yield items.shift()!;
          if (items.length < highWater && roomWaiters.length > 0) {
            const waiters = roomWaiters;
            roomWaiters = [];
            for (const resolve of waiters) resolve();
          }
        }
        if (ended) return;
        await new Promise<void>((resolve) => {
          wakeConsumer = resolve;
        });
      }
    },
  };
}
