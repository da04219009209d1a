import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions, Client, HandlerContext, Interceptor } from "@connectrpc/connect";
import { createInternalClient, observeCall } from "@berth/kit";
import { NetpolService } from "@berth/proto/netpol/v1/netpol";
import { RouterService } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";

/** The internal services the public API composes. */
export interface Peers {
  scheduler: Client<typeof SchedulerService>;
  router: Client<typeof RouterService>;
  turnAllocator: Client<typeof TurnAllocatorService>;
  netpol: Client<typeof NetpolService>;
}

/** Where the peers listen. */
export interface PeerUrls {
  scheduler: string;
  router: string;
  turnAllocator: string;
  netpol: string;
}

/** Options of createPeers. */
export interface PeerOptions {
  internalToken: string | undefined;
  /** The deadline of a call whose caller set none. */
  callTimeoutMs: number;
  /** Run on every call to a peer, outside the API's own. */
  interceptors?: Interceptor[];
}

function peerFailure(peer: string, error: unknown): ConnectError {
  const connectError = ConnectError.from(error);
  // A peer refusing the API's own credential is a platform misconfiguration,
  // not something the user's token could fix.
  if (connectError.code === Code.Unauthenticated || connectError.code === Code.PermissionDenied) {
    return new ConnectError(`${peer} refused the API's internal credential`, Code.Internal, undefined, undefined, error);
  }
  // Keep the code, message and details, but not the peer's response metadata:
  // re-sent as headers, its gRPC content-type would corrupt a Connect response.
  const relayed = new ConnectError(connectError.rawMessage, connectError.code, undefined, undefined, error);
  relayed.details = connectError.details;
  return relayed;
}

function mapPeerFailures(peer: string): Interceptor {
  return (next) => (request) => observeCall(() => next(request), { mapError: (error) => peerFailure(peer, error) });
}

/** gRPC clients for every peer, carrying the internal credential and a default deadline. */
export function createPeers(urls: PeerUrls, options: PeerOptions): Peers {
  const client = <T extends Parameters<typeof createInternalClient>[0]>(service: T, name: string, baseUrl: string) =>
    createInternalClient(service, {
      baseUrl,
      token: options.internalToken,
      timeoutMs: options.callTimeoutMs,
      interceptors: [...(options.interceptors ?? []), mapPeerFailures(name)],
    });
  return {
    scheduler: client(SchedulerService, "scheduler", urls.scheduler),
    router: client(RouterService, "router", urls.router),
    turnAllocator: client(TurnAllocatorService, "turn-allocator", urls.turnAllocator),
    netpol: client(NetpolService, "netpol", urls.netpol),
  };
}

/** Options of a unary call to a peer: the caller's cancellation and remaining deadline. */
export function unaryCall(ctx: HandlerContext, defaultTimeoutMs: number): CallOptions {
  return { signal: ctx.signal, timeoutMs: ctx.timeoutMs() ?? defaultTimeoutMs };
}

/** Options of a long-lived stream from a peer: the caller's cancellation and deadline, if it set one. */
export function streamCall(ctx: HandlerContext): CallOptions {
  return { signal: ctx.signal, timeoutMs: ctx.timeoutMs() ?? 0 };
}
