import { followStream } from "@berth/kit";
import type { Logger } from "@berth/kit";
import { createAppFormations } from "./app-formations.js";
import type { AppFormations } from "./app-formations.js";
import { createAppOwners } from "./app-owners.js";
import type { AppOwners } from "./app-owners.js";
import { createAppRoutes } from "./app-routes.js";
import type { AppRoutes } from "./app-routes.js";
import { createMintingTargets } from "./minting-targets.js";
import type { MintingTargets } from "./minting-targets.js";
import type { Peers } from "../peers.js";

/** What the API keeps in memory from its peers' streams, so that reads need fewer calls. */
export interface ReadModel {
  /** App → team, from the scheduler's WatchApps. */
  readonly owners: AppOwners;
  /** App → process types with the app's version, from the scheduler's WatchApps. */
  readonly formations: AppFormations;
  /** App → routes, from the router's WatchRoutes. */
  readonly routes: AppRoutes;
  /** App → its rtc processes' gateways and secrets, from the TURN allocator's WatchMintingTargets. */
  readonly mintingTargets: MintingTargets;
  /** Stops following the streams. */
  close(): Promise<void>;
}

/** Options of startReadModel. */
export interface ReadModelOptions {
  logger: Logger;
  /** First reconnect delay after a stream ended; doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Follows the scheduler's WatchApps, the router's WatchRoutes and the TURN
 * allocator's WatchMintingTargets for as long
 * as the API runs, reconnecting with backoff; while a stream is down the
 * part of the model it feeds answers nothing and reads go to the peer.
 */
export function startReadModel(peers: Pick<Peers, "scheduler" | "router" | "turnAllocator">, options: ReadModelOptions): ReadModel {
  const shutdown = new AbortController();
  const owners = createAppOwners();
  const formations = createAppFormations();
  const routes = createAppRoutes();
  const mintingTargets = createMintingTargets();
  const common = { signal: shutdown.signal, logger: options.logger, initialBackoffMs: options.initialBackoffMs, maxBackoffMs: options.maxBackoffMs };
  const following = Promise.all([
    followStream({
      ...common,
      name: "scheduler WatchApps",
      open: (callOptions) => peers.scheduler.watchApps({}, callOptions),
      onOpen: formations.opening,
      onMessage: (message) => {
        owners.apply(message);
        formations.apply(message);
      },
      onDown: () => {
        owners.down();
        formations.down();
      },
    }),
    followStream({
      ...common,
      name: "router WatchRoutes",
      open: (callOptions) => peers.router.watchRoutes({}, callOptions),
      onOpen: routes.opening,
      onMessage: routes.apply,
      onDown: routes.down,
    }),
    followStream({
      ...common,
      name: "turn-allocator WatchMintingTargets",
      open: (callOptions) => peers.turnAllocator.watchMintingTargets({}, callOptions),
      onMessage: mintingTargets.apply,
      onDown: mintingTargets.down,
    }),
  ]);
  return {
    owners,
    formations,
    routes,
    mintingTargets,
    async close() {
      shutdown.abort();
      await following;
    },
  };
}
