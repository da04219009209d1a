import { timingSafeEqual } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";
import { unauthenticated } from "./errors.js";
import type { CallGuard } from "./server.js";

/** The header that carries the platform's internal credential between services. */
export const AUTHORIZATION_HEADER = "authorization";

/** Constant-time comparison of two secrets of possibly different length. */
export function secretsEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The bearer token of a request, or undefined. */
export function bearerToken(header: Headers): string | undefined {
  const value = header.get(AUTHORIZATION_HEADER);
  const match = value?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

/**
 * A call guard (see ServerOptions.guard) requiring the internal credential;
 * it runs on the headers, so a caller without it never gets its body read.
 */
export function internalTokenGuard(token: string): CallGuard {
  return ({ header }) => {
    const presented = bearerToken(header);
    if (presented === undefined || !secretsEqual(presented, token)) {
      throw unauthenticated("this internal service requires the platform's internal credential");
    }
  };
}

/** A client interceptor that presents the internal credential. */
export function presentInternalToken(token: string): Interceptor {
  return (next) => (request) => {
    request.header.set(AUTHORIZATION_HEADER, `Bearer ${token}`);
    return next(request);
  };
}
