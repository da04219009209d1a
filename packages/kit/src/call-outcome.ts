import type { StreamResponse, UnaryResponse } from "@connectrpc/connect";

/** What an interceptor wants to know of, or change in, the way a call ends. */
export interface CallOutcomeHooks {
  /** Called once when the call ends: with the error when it failed. */
  ended?(error?: unknown): void;
  /** Replaces the error the caller sees. */
  mapError?(error: unknown): unknown;
}

/**
 * Runs a call inside an interceptor and reports its end once. A unary call
 * ends with its response; a streaming call ends when its last message has
 * gone through, not when its headers arrive, so the stream is wrapped.
 */
export async function observeCall<R extends UnaryResponse | StreamResponse>(call: () => Promise<R>, hooks: CallOutcomeHooks): Promise<R> {
  const fail = (error: unknown) => {
    hooks.ended?.(error);
    return hooks.mapError ? hooks.mapError(error) : error;
  };
  let response: R;
  try {
    response = await call();
  } catch (error) {
    throw fail(error);
  }
  if (!response.stream) {
    hooks.ended?.();
    return response;
  }
  const messages = response.message;
  return {
    ...response,
    message: (async function* () {
      try {
        yield* messages;
      } catch (error) {
        throw fail(error);
      }
      hooks.ended?.();
    })(),
  };
}
