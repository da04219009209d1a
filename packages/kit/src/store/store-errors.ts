import { Code, ConnectError } from "@connectrpc/connect";

// SQLSTATE classes: 08 connection exception, 53 insufficient resources
// (53300 too many connections), 57P01-57P03 the server shutting down or
// starting; all pass once the database is back or less busy.
const RETRYABLE_SQLSTATE = /^(08[0-9A-Z]{3}|53[0-9A-Z]{3}|57P0[1-3])$/;
// A data exception: a NUL byte in text, a number out of range.
const DATA_EXCEPTION_SQLSTATE = /^22[0-9A-Z]{3}$/;
// The socket to the database could not be opened or was lost.
const CONNECTION_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE"]);
// pg and pg-pool report a lost connection or a connect timeout without a code.
const CONNECTION_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/**
 * The Connect error a database failure stands for, or undefined when
 * `error` is not one the store recognises. A value from the request that no
 * field check caught is INVALID_ARGUMENT; a database that cannot be reached
 * or has no connection left for us (SQLSTATE 53300 "too many clients") is
 * UNAVAILABLE, which tells the caller to retry, instead of UNKNOWN.
 */
export function storeErrorAsConnectError(error: unknown): ConnectError | undefined {
  if (!(error instanceof Error) || error instanceof ConnectError) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && DATA_EXCEPTION_SQLSTATE.test(code)) {
    return new ConnectError(`the request holds a value that cannot be stored: ${error.message}`, Code.InvalidArgument, undefined, undefined, error);
  }
  if ((typeof code === "string" && (RETRYABLE_SQLSTATE.test(code) || CONNECTION_ERRNO.has(code))) || CONNECTION_MESSAGE.test(error.message)) {
    return new ConnectError(`the database is unavailable, try again: ${error.message}`, Code.Unavailable, undefined, undefined, error);
  }
  return undefined;
}
