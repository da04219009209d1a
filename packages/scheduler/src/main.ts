import { ConfigError, createLogger, maskedConfig, runUntilSignal } from "@berth/kit";
import { readSchedulerConfig } from "./config.js";
import { startScheduler } from "./index.js";

let config;
try {
  config = readSchedulerConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`berth scheduler: ${error.message}\n`);
  process.exit(2);
}
const logger = createLogger("scheduler", { level: config.logLevel });
logger.info(
  "configuration",
  maskedConfig({
    ...config,
    health: JSON.stringify(config.health),
    autoscale: JSON.stringify(config.autoscale),
    kubernetes: JSON.stringify(config.kubernetes),
    replicaBaseEnv: Object.keys(config.replicaBaseEnv).join(","),
  }),
);
const scheduler = await startScheduler(config, { logger });
await runUntilSignal(logger, [scheduler]);
