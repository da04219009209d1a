import { createLogger, readCommonConfig, servePartial, startServer } from "@berth/kit";
import type { CommonConfig, Environment, Logger, RunningServer } from "@berth/kit";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";

/** Configuration of the turn-allocator service. */
export type TurnAllocatorConfig = CommonConfig;

/** Reads the turn-allocator service's configuration from the environment. */
export function readTurnAllocatorConfig(env: Environment): TurnAllocatorConfig {
  return readCommonConfig(env, "turn-allocator");
}

/**
 * Serves TurnAllocatorService. Its behaviour is on the roadmap (shared/roadmap/turn-allocator.md):
 * until it is built every RPC answers UNIMPLEMENTED, while health, reflection
 * and the internal credential already work so the platform's wiring is real.
 */
export function startTurnAllocator(config: TurnAllocatorConfig, logger: Logger = createLogger("turn-allocator", { level: config.logLevel })): Promise<RunningServer> {
  return startServer({
    name: "turn-allocator",
    host: config.host,
    port: config.port,
    internalToken: config.internalToken,
    maxMessageBytes: config.maxMessageBytes,
    services: [servePartial(TurnAllocatorService, {})],
    logger,
  });
}
