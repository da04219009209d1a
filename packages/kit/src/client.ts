import type { DescService } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { presentInternalToken } from "./internal-auth.js";

/** Options of createInternalClient. */
export interface InternalClientOptions {
  /** http://host:port of the peer service. */
  baseUrl: string;
  /** The platform's internal credential. */
  token?: string;
  /** Deadline of a call that does not set its own; every call between services has one. */
  timeoutMs?: number;
  interceptors?: Interceptor[];
}

/** The default deadline of a call between services. */
export const DEFAULT_INTERNAL_TIMEOUT_MS = 10_000;

/**
 * A gRPC client for another berth service: HTTP/2, the internal credential
 * on every call, and a default deadline. Pass the caller's `signal` and a
 * `timeoutMs` per call to carry deadlines through; long-lived streams (watches,
 * log follows) pass `timeoutMs: 0` to opt out of the default deadline.
 */
export function createInternalClient<T extends DescService>(service: T, options: InternalClientOptions): Client<T> {
  const interceptors = [...(options.interceptors ?? [])];
  if (options.token) interceptors.push(presentInternalToken(options.token));
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    defaultTimeoutMs: options.timeoutMs ?? DEFAULT_INTERNAL_TIMEOUT_MS,
    interceptors,
  });
  return createClient(service, transport);
}
