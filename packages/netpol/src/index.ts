import { createLogger, readCommonConfig, servePartial, startServer } from "@berth/kit";
import type { CommonConfig, Environment, Logger, RunningServer } from "@berth/kit";
import { NetpolService } from "@berth/proto/netpol/v1/netpol";

/** Configuration of the netpol service. */
export type NetpolConfig = CommonConfig;

/** Reads the netpol service's configuration from the environment. */
export function readNetpolConfig(env: Environment): NetpolConfig {
  return readCommonConfig(env, "netpol");
}

/**
 * Serves NetpolService. Its behaviour is on the roadmap (shared/roadmap/netpol.md):
 * until it is built every RPC answers UNIMPLEMENTED, while health, reflection
 * and the internal credential already work so the platform's wiring is real.
 */
export function startNetpol(config: NetpolConfig, logger: Logger = createLogger("netpol", { level: config.logLevel })): Promise<RunningServer> {
  return startServer({
    name: "netpol",
    host: config.host,
    port: config.port,
    internalToken: config.internalToken,
    maxMessageBytes: config.maxMessageBytes,
    services: [servePartial(NetpolService, {})],
    logger,
  });
}
