import type { HandlerContext } from "@connectrpc/connect";
import type { Logger, RateLimits } from "@berth/kit";
import type { ProcessFormation } from "@berth/proto/type/v1/process";
import { unaryCall } from "../peers.js";
import type { Peers } from "../peers.js";
import type { GitRepositories } from "../git/repositories.js";
import type { ReadModel } from "../read-model/read-model.js";
import type { SharedReads } from "../read-model/shared-reads.js";
import type { ApiStore } from "../store/index.js";

/** What every handler module is built from. */
export interface ServiceDeps {
  peers: Peers;
  store: ApiStore;
  /** The apps' git repositories (deleted with their app). */
  repositories: GitRepositories;
  /** The deadline of a peer call when the client set none. */
  callTimeoutMs: number;
  logger: Logger;
  /** App owners, formations and routes kept from the peers' streams. */
  readModel: Pick<ReadModel, "owners" | "formations" | "routes" | "mintingTargets">;
  /** The rate limits credential minting shares with the TURN allocator. */
  rateLimits: RateLimits;
  /** The scheduler's formation of an app, one read for the callers that want it at the same time. */
  formations: SharedReads<readonly ProcessFormation[]>;
}

/** Call options for a unary peer call made on behalf of `ctx`. */
export function callOptions(deps: ServiceDeps, ctx: HandlerContext) {
  return unaryCall(ctx, deps.callTimeoutMs);
}
