import { createLogger, maskedConfig, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { readNetpolConfig, startNetpol } from "./index.js";

const config = readConfigOrExit("netpol", () => readNetpolConfig(process.env));
const logger = createLogger("netpol", { level: config.logLevel });
logger.info("configuration", maskedConfig(config));
await runUntilSignal(logger, [await startNetpol(config, logger)]);
