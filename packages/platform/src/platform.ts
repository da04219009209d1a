// `npm start`: every berth service in one process on the embedded defaults,
// each on its own port, talking to the others over real gRPC on loopback.
import { createCoordination, createLogger, maskedConfig, readConfigOrExit, runUntilSignal } from "@berth/kit";
import type { Closable } from "@berth/kit";
import { readApiConfig, startApi } from "@berth/api";
import { readNetpolConfig, startNetpol } from "@berth/netpol";
import { readRouterConfig, startRouter } from "@berth/router";
import { readSchedulerConfig, startScheduler } from "@berth/scheduler";
import { readTurnAllocatorConfig, startTurnAllocator } from "@berth/turn-allocator";

const env = process.env;
const configs = readConfigOrExit("platform", () => ({
  scheduler: readSchedulerConfig(env),
  router: readRouterConfig(env),
  turnAllocator: readTurnAllocatorConfig(env),
  netpol: readNetpolConfig(env),
  api: readApiConfig(env),
}));
const logger = createLogger("platform", { level: configs.api.logLevel });
logger.info(
  "configuration",
  maskedConfig({
    dataDir: configs.api.dataDir,
    databaseUrl: configs.api.databaseUrl ?? `embedded PostgreSQL in ${configs.api.dataDir}/postgres`,
    redisUrl: configs.api.redisUrl ?? "in-process",
  }),
);
const loggerFor = (service: string) => createLogger(service, { level: configs.api.logLevel });
// One process: the in-process coordination is shared, as Redis would be between processes.
const coordination = createCoordination({ redisUrl: configs.api.redisUrl, logger });
const parts: Closable[] = [{ close: () => coordination.close() }];
/** Starts every service; a failure (the data directory in use, a port taken) closes what started and exits 1 with its reason. */
async function startServices() {
  try {
    // Peers first: the router and the API call the scheduler as they start.
    const scheduler = await startScheduler(configs.scheduler, { logger: loggerFor("scheduler"), coordination });
    parts.push(scheduler);
    const router = await startRouter(configs.router, { logger: loggerFor("router"), coordination });
    parts.push(router);
    parts.push(await startTurnAllocator(configs.turnAllocator, { logger: loggerFor("turn-allocator"), coordination }));
    parts.push(await startNetpol(configs.netpol, { logger: loggerFor("netpol") }));
    const api = await startApi(configs.api, { logger: loggerFor("api"), coordination });
    parts.push(api);
    return { scheduler, router, api };
  } catch (error) {
    // A ConnectError's message starts with its code in brackets; rawMessage is the reason alone.
    const reason = (error as { rawMessage?: string }).rawMessage ?? (error instanceof Error ? error.message : String(error));
    logger.error(`berth did not start: ${reason}`);
    for (const part of [...parts].reverse()) await part.close(1000).catch(() => {});
    process.exit(1);
  }
}
const { scheduler, router, api } = await startServices();
logger.info("berth is up", {
  api: api.url,
  scheduler: scheduler.url,
  router: router.url,
  proxy: { http: router.proxyHttpPort, https: router.proxyHttpsPort },
});
await runUntilSignal(logger, parts);
