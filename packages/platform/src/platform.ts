import { createCoordination, createLogger, exitForConfigError, maskedConfig, runUntilSignal } from "@berth/kit";
import type { ClusterLease, Closable, Logger } from "@berth/kit";
import { readApiConfig, startApi } from "@berth/api";
import { readNetpolConfig, startNetpol } from "@berth/netpol";
import { readRouterConfig, startRouter } from "@berth/router";
import { readSchedulerConfig, startScheduler } from "@berth/scheduler";
import { readTurnAllocatorConfig, startTurnAllocator } from "@berth/turn-allocator";

function readConfigs(env: NodeJS.ProcessEnv) {
  return {
    scheduler: readSchedulerConfig(env),
    router: readRouterConfig(env),
    turnAllocator: readTurnAllocatorConfig(env),
    netpol: readNetpolConfig(env),
    api: readApiConfig(env),
  };
}

/**
 * Starts every service and serves until a signal. `earlyCluster` is the
 * embedded cluster main.ts began starting: held until every service has
 * closed, and let go before any exit, so that a refused configuration or a
 * failed start never leaves the cluster running.
 */
export async function runPlatform(env: NodeJS.ProcessEnv, logger: Logger, earlyCluster: Promise<ClusterLease> | undefined): Promise<void> {
  const parts: Closable[] = [];
  if (earlyCluster !== undefined) parts.push({ close: async () => (await earlyCluster.catch(() => undefined))?.release() });
  const closeAll = async () => {
    for (const part of [...parts].reverse()) await part.close(1000).catch(() => {});
  };
  let configs: ReturnType<typeof readConfigs>;
  try {
    configs = readConfigs(env);
  } catch (error) {
    await closeAll();
    exitForConfigError("platform", error);
  }
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
  parts.push({ close: () => coordination.close() });
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
    logger.info("berth is up", {
      api: api.url,
      scheduler: scheduler.url,
      router: router.url,
      proxy: { http: router.proxyHttpPort, https: router.proxyHttpsPort },
    });
  } catch (error) {
    // A ConnectError's message starts with its code in brackets; rawMessage is the reason alone.
    const reason = (error as { rawMessage?: string }).rawMessage ?? (error instanceof Error ? error.message : String(error));
    logger.error(`berth did not start: ${reason}`);
    await closeAll();
    process.exit(1);
  }
  await runUntilSignal(logger, parts);
}
