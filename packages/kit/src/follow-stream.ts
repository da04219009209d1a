import { setTimeout as sleep } from "node:timers/promises";
import type { CallOptions } from "@connectrpc/connect";
import type { Logger } from "./logger.js";

/** Options of followStream. */
export interface FollowStreamOptions<M> {
  /** The stream's name in logs. */
  name: string;
  /** Opens the stream; `options` carry no deadline and the follower's signal. */
  open(options: CallOptions): AsyncIterable<M>;
  /** Called just before each attempt to open the stream. */
  onOpen?(): void;
  /**
   * Each message, in order; the next is read once it returns or resolves.
   * A throw or rejection counts as a failed stream: it is opened again, and
   * a stream that starts with a snapshot repairs what was missed.
   */
  onMessage(message: M): void | Promise<void>;
  /** The stream ended or failed: what it said may be out of date until the next snapshot. */
  onDown?(): void;
  /** Ends the following (the service is shutting down). */
  signal: AbortSignal;
  logger: Logger;
  /** Reconnect delays: from `initialBackoffMs`, doubling up to `maxBackoffMs`; reset by a message. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Follows a server stream for as long as `signal` is live: every message goes
 * to `onMessage`; when the stream ends or fails, `onDown` is called and the
 * stream is opened again after a backoff. Resolves once `signal` aborts.
 */
export async function followStream<M>(options: FollowStreamOptions<M>): Promise<void> {
  const initialBackoff = options.initialBackoffMs ?? 100;
  const maxBackoff = options.maxBackoffMs ?? 5000;
  let backoff = initialBackoff;
  while (!options.signal.aborted) {
    try {
      options.onOpen?.();
      // No deadline: Connect would keep a stream's deadline timer running after the stream ended.
      for await (const message of options.open({ signal: options.signal, timeoutMs: 0 })) {
        await options.onMessage(message);
        backoff = initialBackoff;
      }
      if (!options.signal.aborted) options.logger.info("stream ended; reconnecting", { stream: options.name, inMs: backoff });
    } catch (error) {
      if (!options.signal.aborted) options.logger.warn("stream failed; reconnecting", { stream: options.name, error, inMs: backoff });
    } finally {
      options.onDown?.();
    }
    await sleep(backoff, undefined, { signal: options.signal }).catch(() => {});
    backoff = Math.min(maxBackoff, backoff * 2);
  }
}
