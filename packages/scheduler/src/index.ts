import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { REQUEST_ID_RETENTION_MS, createCoordination, createInternalClient, createLogger, loadKubeConfig, openDatabase, serve, startServer } from "@berth/kit";
import type { Coordination, Logger } from "@berth/kit";
import type { KubeConfig } from "@kubernetes/client-node";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import { startAutoscaler } from "./autoscaler.js";
import { createChangeFeed } from "./change-feed.js";
import type { SchedulerConfig } from "./config.js";
import { createEndpointHub } from "./endpoints.js";
import { createTrafficLedger } from "./traffic-ledger.js";
import type { Engine } from "./engine/engine.js";
import { createLocalEngine } from "./engine/local/local-engine.js";
import { createReplicaSupervisor } from "./engine/local/replica-supervisor.js";
import { chooseReplicaRuntime } from "./engine/local/runtime-choice.js";
import type { ChosenRuntime } from "./engine/local/runtime-choice.js";
import type { ReplicaSupervisor } from "./engine/local/replica-supervisor.js";
import { createAppController } from "./reconcile/app-controller.js";
import { createRtcEnvironment } from "./rtc-environment.js";
import { createSchedulerService } from "./service.js";
import { createSourceUploads } from "./source-uploads.js";
import { createDiskRetention } from "./disk-retention.js";
import { MIGRATIONS } from "./store/migrations.js";
import { pruneRequestIds } from "./store/request-ids.js";

// Router traffic reports are kept a day: longer than any rollout, whose figures are kept for good once final.
const TRAFFIC_RETENTION_MS = 24 * 60 * 60 * 1000;

export { readSchedulerConfig } from "./config.js";
export type { SchedulerConfig } from "./config.js";
export { POD_SIZES } from "./pod-sizes.js";
export { runcUsable } from "./engine/local/container/runc.js";
export { removeHostNetwork } from "./engine/local/container/runc-replica-runtime.js";

const REQUEST_ID_PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/** Options of startScheduler beyond the configuration. */
export interface StartSchedulerOptions {
  logger?: Logger;
  /** Shared with other services of the process; built from REDIS_URL otherwise, and then closed with the scheduler. */
  coordination?: Coordination;
  /** The cluster of the kubernetes engine; from KUBECONFIG (or the defaults) otherwise. */
  kubeConfig?: KubeConfig;
}

/** The running scheduler. */
export interface RunningScheduler {
  readonly url: string;
  readonly port: number;
  /**
   * Stops serving and leaves every replica running for the next scheduler to
   * adopt (a restart or an upgrade is no app downtime); with
   * BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN it drains instead.
   */
  close(graceMs?: number): Promise<void>;
  /** Stops serving, then (local engine) every replica it runs: SIGTERM, then SIGKILL after the grace period. */
  drain(graceMs?: number): Promise<void>;
}

/**
 * Starts the scheduler: opens its schema, adopts the replicas a previous run
 * left, resumes rollouts under way and serves SchedulerService.
 */
export async function startScheduler(config: SchedulerConfig, options: StartSchedulerOptions = {}): Promise<RunningScheduler> {
  const logger = options.logger ?? createLogger("scheduler", { level: config.logLevel });
  const db = await openDatabase({
    service: "scheduler",
    schema: config.schema,
    migrations: MIGRATIONS,
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    logger,
  });
  const coordination = options.coordination ?? createCoordination({ redisUrl: config.redisUrl, logger });
  const files = join(config.dataDir, "apps");
  const endpoints = await createEndpointHub({
    db,
    logger,
    consumerTimeoutMs: config.consumerTimeoutMs,
    ackTimeoutMs: config.ackTimeoutMs,
    drainTimeoutMs: config.drainTimeoutMs,
  });
  // Request ids are remembered for a day: forgotten at start and every hour after.
  const pruneOldRequestIds = () =>
    pruneRequestIds(db, new Date(Date.now() - REQUEST_ID_RETENTION_MS)).catch((error: unknown) => logger.warn("could not prune request ids", { error }));
  await pruneOldRequestIds();
  const pruning = setInterval(() => void pruneOldRequestIds(), REQUEST_ID_PRUNE_INTERVAL_MS);
  pruning.unref();
  const feed = createChangeFeed();
  const traffic = createTrafficLedger({ db, feed, logger, settleTimeoutMs: config.trafficSettleMs, retentionMs: TRAFFIC_RETENTION_MS });
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(6).toString("hex")}`;
  const uploads = createSourceUploads({
    db,
    directory: files,
    maxUploadBytes: config.maxUploadBytes,
    maxChunkBytes: config.maxChunkBytes,
    archiveLimits: config.archiveLimits,
    teamLimits: config.uploadTeamLimits,
  });
  const retention = createDiskRetention({
    db,
    directory: files,
    settings: { releasesKept: config.releasesKept, uploadTtlMs: config.uploadTeamLimits.uploadTtlMs },
    logger,
  });
  // Abandoned uploads are forgotten at start and then every quarter of their TTL (at most every 10 minutes).
  const expireUploads = () => retention.expireUploads().catch((error: unknown) => logger.warn("could not expire abandoned uploads", { error }));
  await expireUploads();
  const expiring = setInterval(() => void expireUploads(), Math.min(config.uploadTeamLimits.uploadTtlMs / 4, 10 * 60_000));
  expiring.unref();
  const rtcEnvironment = () =>
    createRtcEnvironment(
      createInternalClient(TurnAllocatorService, { baseUrl: config.turnAllocator.url, token: config.internalToken }),
      config.turnAllocator.timeoutMs,
    );
  let engine: Engine;
  let supervisor: ReplicaSupervisor | undefined;
  let localRuntime: ChosenRuntime | undefined;
  if (config.engine === "kubernetes") {
    // Loaded only here: the Kubernetes client takes most of a second to import.
    const { createKubernetesDeployer } = await import("./engine/kubernetes/kubernetes-deployer.js");
    const { manifestSettingsFrom } = await import("./engine/kubernetes/manifests.js");
    const { createKubernetesEngine } = await import("./engine/kubernetes/kubernetes-engine.js");
    const kubeConfig = options.kubeConfig ?? (await loadKubeConfig(config.kubernetes.kubeconfigPath));
    const deployer = createKubernetesDeployer({ kubeConfig, settings: manifestSettingsFrom(config), logger });
    engine = createKubernetesEngine({ db, deployer, kubeConfig, endpoints, config, logger, rtcEnvironment: rtcEnvironment() });
  } else {
    localRuntime = await chooseReplicaRuntime({
      config: config.localRuntime,
      dataDir: config.dataDir,
      internalToken: config.internalToken,
      baseEnv: config.replicaBaseEnv,
      logger,
    });
    supervisor = createReplicaSupervisor({
      directory: files,
      host: "127.0.0.1",
      runtime: localRuntime.runtime,
      baseEnv: config.replicaBaseEnv,
      restartBackoffMs: config.restartBackoffMs,
      maxRestartBackoffMs: config.maxRestartBackoffMs,
      logLinesPerReplica: config.logLinesPerReplica,
      logFileMaxBytes: config.logFileMaxBytes,
      taskKillGraceMs: config.stopGraceMs,
      logger,
    });
    engine = createLocalEngine({ db, supervisor, endpoints, config, logger, rtcEnvironment: rtcEnvironment() });
  }
  const controller = createAppController({ db, engine, coordination, feed, config, logger, instanceId, retention });
  // On Kubernetes the cluster's HorizontalPodAutoscaler scales.
  const autoscaler = supervisor && startAutoscaler({ db, supervisor, controller, feed, config: config.autoscale, logger });
  await controller.start();
  const server = await startServer({
    name: "scheduler",
    host: config.host,
    port: config.port,
    logger,
    internalToken: config.internalToken,
    maxMessageBytes: config.maxMessageBytes,
    services: [serve(SchedulerService, createSchedulerService({ db, config, controller, endpoints, engine, feed, uploads, traffic, logger }))],
  });
  let closing: Promise<void> | undefined;
  const stop = (drain: boolean, graceMs: number) => {
    closing ??= (async () => {
      clearInterval(pruning);
      clearInterval(expiring);
      traffic.close();
      endpoints.close();
      await server.close(graceMs);
      await autoscaler?.close();
      // Detached first, so that closing the controller does not wait for release tasks that go on running.
      if (!drain) await supervisor?.detach();
      await controller.close();
      // A cluster's replicas always keep running; local ones only stop when drained.
      if (drain) await supervisor?.close(config.stopGraceMs);
      await localRuntime?.close();
      if (options.coordination === undefined) await coordination.close();
      await db.close();
    })();
    return closing;
  };
  return {
    url: server.url,
    port: server.port,
    close: (graceMs = 10_000) => stop(config.drainOnShutdown, graceMs),
    drain: (graceMs = 10_000) => stop(true, graceMs),
  };
}
