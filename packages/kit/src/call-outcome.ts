import { Code, ConnectError } from "@connectrpc/connect";
import type { StreamResponse, UnaryResponse } from "@connectrpc/connect";

/** What an interceptor wants to know of, or change in, the way a call ends. */
export interface CallOutcomeHooks {
  /**
   * Called once when the call ends: with the error when it failed, or with
   * CANCELED when its stream's reader stopped before the end (a client that
   * left). The call's end waits for it.
   */
  ended?(error?: unknown): void | Promise<void>;
  /** Replaces the error the caller sees. */
  mapError?(error: unknown): unknown;
}

/**
 * Runs a call inside an interceptor and reports its end once. A unary call
 * ends with its response; a streaming call ends when its last message has
 * gone through, not when its headers arrive, so the stream is wrapped.
 */
export async function observeCall<R extends UnaryResponse | StreamResponse>(call: () => Promise<R>, hooks: CallOutcomeHooks): Promise<R> {
  let reported = false;
  const end = async (error?: unknown) => {
    reported = true;
    await hooks.ended?.(error);
  };
  const fail = async (error: unknown) => {
    await end(error);
    return hooks.mapError ? hooks.mapError(error) : error;
  };
  let response: R;
  try {
    response = await call();
  } catch (error) {
    throw await fail(error);
  }
  if (!response.stream) {
    await end();
    return response;
  }
  const messages = response.message;
  return {
    ...response,
    message: (async function* () {
      try {
        yield* messages;
        await end();
      } catch (error) {
        throw await fail(error);
      } finally {
        // Neither finished nor failed: the reader returned early, which ends the stream here.
        if (!reported) await end(new ConnectError("the stream's reader stopped before its end", Code.Canceled));
      }
    })(),
  };
}
