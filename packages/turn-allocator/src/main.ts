import { createLogger, maskedConfig, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { readTurnAllocatorConfig, startTurnAllocator } from "./index.js";

const config = readConfigOrExit("turn-allocator", () => readTurnAllocatorConfig(process.env));
const logger = createLogger("turn-allocator", { level: config.logLevel });
logger.info("configuration", maskedConfig(config));
await runUntilSignal(logger, [await startTurnAllocator(config, { logger })]);
