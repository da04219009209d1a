import { Code, ConnectError } from "@connectrpc/connect";

const RETRYABLE = new Set([Code.Unavailable]);

/**
 * Retries a call the API could not be reached for. Only for calls that are
 * safe to repeat: reads, and writes that carry a request id.
 */
export async function retryUnavailable<T>(call: () => Promise<T>, attempts = 3, firstDelayMs = 500): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= attempts || !RETRYABLE.has(ConnectError.from(error).code)) throw error;
      await new Promise((resolve) => setTimeout(resolve, firstDelayMs * 2 ** (attempt - 1)));
    }
  }
}
