import { Code, ConnectError } from "@connectrpc/connect";
import type { Coordination, Logger } from "@berth/kit";

const STREAM = "api:token-revocations";

/** Tells every API replica at once that a token was revoked, so none keeps honouring a cached copy. */
export interface TokenRevocations {
  /** Announces a revocation to every replica, this one included. */
  announce(tokenId: string): Promise<void>;
  /** Stops listening. */
  close(): void;
}

/** What the revocation feed drives: the authenticator's cache. */
export interface RevocationListener {
  forget(tokenId: string): void;
  /** Drops everything: revocations may have been missed. */
  forgetAll(): void;
}

/**
 * Publishes revocations on the coordination event stream and applies those of
 * every replica to `listener`. When the subscription falls behind what the
 * stream retained, every cached token is dropped and it starts over from now.
 */
export function startTokenRevocations(coordination: Coordination, listener: RevocationListener, logger: Logger): TokenRevocations {
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const event of coordination.events.subscribe(STREAM, { after: "$", signal: stop.signal })) {
          listener.forget(new TextDecoder().decode(event.payload));
        }
      } catch (error) {
        if (stop.signal.aborted) return;
        listener.forgetAll();
        if (ConnectError.from(error).code !== Code.OutOfRange) {
          logger.warn("token revocation feed failed; retrying", { error });
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
    }
  })();
  return {
    async announce(tokenId) {
      listener.forget(tokenId);
      await coordination.events.publish(STREAM, tokenId);
    },
    close: () => stop.abort(),
  };
}
