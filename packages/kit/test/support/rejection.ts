import { Code, ConnectError } from "@connectrpc/connect";

/** The ConnectError a promise rejects with, which must carry `code`; anything else fails the test. */
export async function rejection(promise: Promise<unknown>, code: Code): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConnectError && error.code === code) return error;
    throw error;
  }
  throw new Error(`expected a ConnectError with code ${Code[code]}, but it resolved`);
}
