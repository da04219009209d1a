import { ConfigError, createLogger, maskedConfig, runUntilSignal } from "@berth/kit";
import { readApiConfig } from "./config.js";
import { startApi } from "./index.js";

let config;
try {
  config = readApiConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`berth api: ${error.message}\n`);
  process.exit(2);
}
const logger = createLogger("api", { level: config.logLevel });
logger.info("configuration", maskedConfig({ ...config, peers: JSON.stringify(config.peers) }));
const api = await startApi(config, { logger });
await runUntilSignal(logger, [api]);
