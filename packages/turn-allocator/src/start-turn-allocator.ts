import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import { createCoordination, createInternalClient, createLogger, loadKubeConfig, openDatabase, serve, startServer } from "@berth/kit";
import type { Coordination, Database, Logger, RunningServer } from "@berth/kit";
import { RouterService } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import type { KubeConfig } from "@kubernetes/client-node";
import { announceAllocationChange, followAllocationChanges } from "./allocation-changes.js";
import { followSchedulerApps } from "./app-feed.js";
import type { TurnAllocatorConfig } from "./config.js";
import { createKubernetesGateways } from "./gateway/kubernetes/kubernetes-gateways.js";
import { createLocalGateways } from "./gateway/local/local-gateways.js";
import type { GatewayEngine } from "./gateway/gateway-spec.js";
import { createMintingTargets } from "./minting-targets.js";
import { startGatewayReconciler } from "./reconcile/gateway-reconciler.js";
import type { TurnCertificateSource } from "./reconcile/gateway-reconciler.js";
import { createTurnAllocatorService } from "./service.js";
import { createAllocationStore } from "./store/allocation-store.js";
import { turnAllocatorMigrations } from "./store/migrations.js";

/** Collaborators a caller may provide instead of the ones built from the configuration. */
export interface TurnAllocatorDeps {
  logger?: Logger;
  /** An open, migrated database; otherwise one is opened from the configuration (and closed with the service). */
  database?: Database;
  /** Shared with other services in one process; otherwise made from REDIS_URL (and closed with the service). */
  coordination?: Coordination;
  /** The cluster, for the kubernetes engine; otherwise KUBECONFIG or the default. */
  kubeConfig?: KubeConfig;
  /** Runs no gateways at all (tests of the pool against one database from several instances). */
  gateways?: GatewayEngine | false;
  /**
   * The scheduler whose apps the allocations follow; otherwise an internal
   * client to `schedulerUrl`. False follows nothing (tests of the allocator alone).
   */
  scheduler?: Pick<Client<typeof SchedulerService>, "watchApps"> | false;
  /**
   * The router that issues the gateways' certificates (local engine);
   * otherwise an internal client to `routerUrl`. False: gateways serve no TLS.
   */
  router?: Pick<Client<typeof RouterService>, "syncTurnCertificates"> | false;
}

/** The certificates the router has issued for `hostnames`. */
function routerCertificates(router: Pick<Client<typeof RouterService>, "syncTurnCertificates">, timeoutMs: number): TurnCertificateSource {
  return async (hostnames) => {
    const { certificates } = await router.syncTurnCertificates({ hostnames }, { timeoutMs });
    return new Map(
      certificates
        .filter((certificate) => certificate.certificatePem !== "" && certificate.privateKeyPem !== "")
        .map((certificate) => [certificate.hostname, { certificatePem: certificate.certificatePem, privateKeyPem: certificate.privateKeyPem }]),
    );
  };
}

/** The deadline of a certificate sync with the router. */
const CERTIFICATE_CALL_TIMEOUT_MS = 10_000;

/** How long minting may use an allocation read from the database before reading it again. */
const MINTING_TARGET_MAX_AGE_MS = 5_000;

async function gatewayEngine(config: TurnAllocatorConfig, deps: TurnAllocatorDeps, logger: Logger): Promise<GatewayEngine> {
  if (config.engine === "kubernetes") {
    const kubeConfig = deps.kubeConfig ?? (await loadKubeConfig(config.kubernetes.kubeconfigPath));
    return createKubernetesGateways({ kubeConfig, settings: { namespace: config.kubernetes.namespace, image: config.kubernetes.coturnImage }, logger });
  }
  return createLocalGateways({ directory: join(config.dataDir, "turn-allocator", "gateways"), ...config.gateway, logger });
}

/**
 * Serves TurnAllocatorService and, while this instance holds the gateway
 * lease, runs a TURN gateway per rtc process on the configured engine.
 */
export async function startTurnAllocator(config: TurnAllocatorConfig, deps: TurnAllocatorDeps = {}): Promise<RunningServer> {
  const logger = deps.logger ?? createLogger("turn-allocator", { level: config.logLevel });
  const database =
    deps.database ??
    (await openDatabase({
      service: "turn-allocator",
      schema: config.schema,
      migrations: turnAllocatorMigrations,
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      logger,
    }));
  const coordination = deps.coordination ?? createCoordination({ redisUrl: config.redisUrl, logger });
  const store = createAllocationStore(database);
  const mintingTargets = createMintingTargets(store, MINTING_TARGET_MAX_AGE_MS);
  const stopping = new AbortController();
  const changeListeners = new Set<(app: string) => void>();
  const following = followAllocationChanges(coordination.events, stopping.signal, logger, (app) => {
    if (app === "") mintingTargets.forgetAll();
    else mintingTargets.forget(app);
    for (const listener of changeListeners) listener(app);
  });
  const pools = { portRange: config.portRange, relayRange: config.relayRange, relayPortsPerGateway: config.relayPortsPerGateway };
  const announceChange = (app: string) => announceAllocationChange(coordination.events, app);
  const scheduler =
    deps.scheduler === false
      ? undefined
      : (deps.scheduler ?? createInternalClient(SchedulerService, { baseUrl: config.schedulerUrl, token: config.internalToken }));
  const followingApps = scheduler && followSchedulerApps({ scheduler, store, pools, announceChange, logger, signal: stopping.signal });
  const engine = deps.gateways === false ? undefined : (deps.gateways ?? (await gatewayEngine(config, deps, logger)));
  // Only the local engine's gateways take a certificate: on a cluster the router does not issue them (cert-manager would).
  const router =
    deps.router === false || config.engine !== "local"
      ? undefined
      : (deps.router ?? createInternalClient(RouterService, { baseUrl: config.routerUrl, token: config.internalToken }));
  const reconciler =
    engine &&
    startGatewayReconciler({
      store,
      engine,
      realm: config.realm,
      coordination,
      logger,
      platformDomain: config.platformDomain,
      certificates: router && routerCertificates(router, CERTIFICATE_CALL_TIMEOUT_MS),
      announceChange,
    });
  const server = await startServer({
    name: "turn-allocator",
    host: config.host,
    port: config.port,
    internalToken: config.internalToken,
    maxMessageBytes: config.maxMessageBytes,
    services: [
      serve(
        TurnAllocatorService,
        createTurnAllocatorService({
          store,
          pools,
          naming: { platformDomain: config.platformDomain, realm: config.realm },
          credentialTtl: config.credentialTtl,
          rotationGraceSeconds: config.rotationGraceSeconds,
          mintsPerMinute: config.mintsPerMinute,
          rateLimits: coordination.rateLimits,
          mintingTargets,
          announceChange,
          gatewaysApplied: async () => reconciler?.kick(),
          onChange(listener) {
            changeListeners.add(listener);
            return () => changeListeners.delete(listener);
          },
        }),
      ),
    ],
    logger,
  });
  return {
    ...server,
    url: server.url,
    port: server.port,
    health: server.health,
    metrics: server.metrics,
    async close(graceMs) {
      await server.close(graceMs);
      stopping.abort();
      await following;
      await followingApps;
      await reconciler?.close();
      if (!deps.coordination) await coordination.close();
      if (!deps.database) await database.close();
    },
  };
}
