import type { HandlerContext } from "@connectrpc/connect";
import type { Logger } from "@berth/kit";
import { unaryCall } from "../peers.js";
import type { Peers } from "../peers.js";
import type { ApiStore } from "../store/index.js";

/** What every handler module is built from. */
export interface ServiceDeps {
  peers: Peers;
  store: ApiStore;
  /** The deadline of a peer call when the client set none. */
  callTimeoutMs: number;
  logger: Logger;
}

/** Call options for a unary peer call made on behalf of `ctx`. */
export function callOptions(deps: ServiceDeps, ctx: HandlerContext) {
  return unaryCall(ctx, deps.callTimeoutMs);
}
