import { createLogger, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { readNetpolConfig } from "./config.js";
import { startNetpol } from "./start-netpol.js";

const config = readConfigOrExit("netpol", () => readNetpolConfig(process.env));
const logger = createLogger("netpol", { level: config.logLevel });
await runUntilSignal(logger, [await startNetpol(config, { logger })]);
