import type { UploadTeamLimits } from "./source-uploads.js";
import { ConfigError, envBool, envInt, envOptional, envString, peerUrl, readCommonConfig, readEngine, readKubernetesTarget } from "@berth/kit";
import type { CommonConfig, Environment, KubernetesTarget } from "@berth/kit";
import type { ArchiveLimits } from "./archive-extraction.js";
import { DEFAULT_HEALTH } from "./health-settings.js";
import type { HealthDefaults } from "./health-settings.js";
import { parseSubnet } from "./engine/local/container/address-plan.js";

/** How the autoscaler samples and decides. */
export interface AutoscaleConfig {
  /** How often replica CPU is sampled and rules evaluated. */
  sampleIntervalMs: number;
  /** A scale-up happens only once every sample in this window asks for more. */
  scaleUpWindowMs: number;
  /** A scale-down goes only as low as the highest recommendation in this window. */
  scaleDownWindowMs: number;
}

/** Where the kubernetes engine applies its objects (shared with the router), and the container port. */
export interface KubernetesConfig extends KubernetesTarget {
  /** Port the app listens on inside its container ($PORT). */
  containerPort: number;
  /**
   * Whether a release of an image tag asks the image's registry for the digest
   * (BERTH_RESOLVE_IMAGE_DIGESTS, default true); false where the control plane
   * cannot reach the registries: the release then runs by tag and is pinned to
   * the digest its first pod pulled.
   */
  resolveImageDigests: boolean;
  /** Registry hosts (host[:port]) asked for image digests over plain HTTP (BERTH_INSECURE_REGISTRIES, comma-separated). */
  insecureRegistries: string[];
  /** How long asking a registry for a tag's digest may take before the release goes ahead unpinned. */
  registryTimeoutMs: number;
}

/** How the local engine runs replicas and release tasks. */
export interface LocalRuntimeConfig {
  /** `runc`: containers, or refuse to start; `process`: plain child processes (no isolation); `auto`: runc when usable. */
  mode: "runc" | "process" | "auto";
  /** The containers' private subnet (BERTH_LOCAL_SUBNET); its bridge, nft table and cgroups are named after it. */
  subnet: string;
  /** The netpol service, whose local policy the firewall enforces. */
  netpolUrl: string;
}

/** Everything the scheduler needs to start. */
export interface SchedulerConfig extends CommonConfig {
  /** Postgres schema of the scheduler's tables. */
  schema: string;
  engine: "local" | "kubernetes";
  /** The two zones replicas of a type with >= 2 replicas are spread over. */
  zones: [string, string];
  maxReplicasPerType: number;
  maxUploadBytes: number;
  maxChunkBytes: number;
  /** Caps on each team's unfinished source uploads, and when an untouched one is abandoned. */
  uploadTeamLimits: UploadTeamLimits;
  /** The latest releases of an app whose source stays on disk for a rollback (the serving one always does). */
  releasesKept: number;
  /** Stop every replica when the scheduler stops (a decommission), instead of leaving them for the next run to adopt. */
  drainOnShutdown: boolean;
  /** What one source archive may unpack to. */
  archiveLimits: ArchiveLimits;
  releaseTimeoutMs: number;
  /** How long a one-off command (`run`) or an exec beside a replica (`ps:exec`) may run. */
  commandTimeoutMs: number;
  /** A rollout fails (and rolls back) when no replica became healthy for this long. */
  progressDeadlineMs: number;
  /** How long a retiring replica waits for its connections to end before SIGTERM. */
  drainTimeoutMs: number;
  /** Between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  /** How long a disconnected endpoint consumer is still waited for. */
  consumerTimeoutMs: number;
  /**
   * A router silent for this long is not waited for before a rollout's traffic
   * figures are made final; nor is any router, this long after the rollout ended.
   */
  trafficSettleMs: number;
  /** How long a connected consumer may take to acknowledge a generation before it is passed over. */
  ackTimeoutMs: number;
  /** New replicas a type may run above its count during a rollout, in percent (at least one). */
  maxSurgePercent: number;
  /** Time to live of the per-app rollout lease. */
  leaseTtlMs: number;
  health: HealthDefaults;
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  logLinesPerReplica: number;
  logFileMaxBytes: number;
  autoscale: AutoscaleConfig;
  /** The environment replicas start from (PATH, HOME, LANG, TZ of the scheduler). */
  replicaBaseEnv: Record<string, string>;
  /** The TURN allocator, which gives replicas of `*-rtc` processes their TURN_* and BERTH_RTC_* variables. */
  turnAllocator: { url: string; timeoutMs: number };
  kubernetes: KubernetesConfig;
  localRuntime: LocalRuntimeConfig;
}

const INHERITED_VARIABLES = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"];

function zonesFrom(raw: string): [string, string] {
  const zones = raw.split(",").map((zone) => zone.trim());
  if (zones.length !== 2 || zones.some((zone) => !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(zone)) || zones[0] === zones[1]) {
    throw new ConfigError(`BERTH_SCHEDULER_ZONES must be two different zone names separated by a comma, got "${raw}"`);
  }
  return [zones[0]!, zones[1]!];
}

function localRuntimeFrom(env: Environment): LocalRuntimeConfig {
  const mode = envString(env, "BERTH_LOCAL_RUNTIME", "auto");
  if (mode !== "runc" && mode !== "process" && mode !== "auto") throw new ConfigError(`BERTH_LOCAL_RUNTIME must be runc, process or auto, got "${mode}"`);
  const subnet = envString(env, "BERTH_LOCAL_SUBNET", "10.88.0.0/16");
  const parsed = parseSubnet(subnet);
  if (typeof parsed === "string") throw new ConfigError(`BERTH_LOCAL_SUBNET: ${parsed}`);
  return { mode, subnet, netpolUrl: peerUrl(env, "netpol") };
}

/** Reads the scheduler's configuration; throws ConfigError naming the variable at fault. */
export function readSchedulerConfig(env: Environment): SchedulerConfig {
  const ms = (name: string, fallback: number, min = 0) => envInt(env, name, fallback, { min, max: 86_400_000 });
  const replicaBaseEnv: Record<string, string> = {};
  for (const name of INHERITED_VARIABLES) {
    const value = envOptional(env, name);
    if (value !== undefined) replicaBaseEnv[name] = value;
  }
  const schema = envString(env, "BERTH_SCHEDULER_SCHEMA", "scheduler");
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new ConfigError(`BERTH_SCHEDULER_SCHEMA must be a lower-case SQL identifier, got "${schema}"`);
  return {
    ...readCommonConfig(env, "scheduler"),
    schema,
    engine: readEngine(env),
    zones: zonesFrom(envString(env, "BERTH_SCHEDULER_ZONES", "zone-a,zone-b")),
    maxReplicasPerType: envInt(env, "BERTH_SCHEDULER_MAX_REPLICAS", 100, { min: 1, max: 10_000 }),
    maxUploadBytes: envInt(env, "BERTH_SCHEDULER_MAX_UPLOAD_BYTES", 256 * 1024 * 1024, { min: 1024 }),
    maxChunkBytes: envInt(env, "BERTH_SCHEDULER_MAX_CHUNK_BYTES", 1024 * 1024, { min: 1024, max: 3 * 1024 * 1024 }),
    uploadTeamLimits: {
      maxUploadsPerTeam: envInt(env, "BERTH_SCHEDULER_MAX_UPLOADS_PER_TEAM", 4, { min: 1, max: 1000 }),
      maxUploadBytesPerTeam: envInt(env, "BERTH_SCHEDULER_MAX_UPLOAD_BYTES_PER_TEAM", 1024 * 1024 * 1024, { min: 1024 }),
      uploadTtlMs: ms("BERTH_SCHEDULER_UPLOAD_TTL_MS", 3_600_000, 1000),
    },
    releasesKept: envInt(env, "BERTH_SCHEDULER_RELEASES_KEPT", 10, { min: 1, max: 1000 }),
    drainOnShutdown: envBool(env, "BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN", false),
    archiveLimits: {
      maxUnpackedBytes: envInt(env, "BERTH_SCHEDULER_MAX_UNPACKED_BYTES", 512 * 1024 * 1024, { min: 1024 }),
      maxEntries: envInt(env, "BERTH_SCHEDULER_MAX_ARCHIVE_ENTRIES", 20_000, { min: 1 }),
    },
    releaseTimeoutMs: ms("BERTH_SCHEDULER_RELEASE_TIMEOUT_MS", 600_000, 100),
    commandTimeoutMs: ms("BERTH_SCHEDULER_COMMAND_TIMEOUT_MS", 3_600_000, 100),
    progressDeadlineMs: ms("BERTH_SCHEDULER_PROGRESS_DEADLINE_MS", 60_000, 100),
    drainTimeoutMs: ms("BERTH_SCHEDULER_DRAIN_TIMEOUT_MS", 30_000),
    stopGraceMs: ms("BERTH_SCHEDULER_STOP_GRACE_MS", 30_000),
    consumerTimeoutMs: ms("BERTH_SCHEDULER_CONSUMER_TIMEOUT_MS", 15_000),
    ackTimeoutMs: ms("BERTH_SCHEDULER_ACK_TIMEOUT_MS", 60_000, 100),
    trafficSettleMs: ms("BERTH_SCHEDULER_TRAFFIC_SETTLE_MS", 5_000, 100),
    maxSurgePercent: envInt(env, "BERTH_SCHEDULER_MAX_SURGE_PERCENT", 25, { min: 1, max: 100 }),
    leaseTtlMs: ms("BERTH_SCHEDULER_LEASE_TTL_MS", 15_000, 1000),
    turnAllocator: { url: peerUrl(env, "turn-allocator"), timeoutMs: ms("BERTH_SCHEDULER_TURN_TIMEOUT_MS", 5_000, 100) },
    health: {
      ...DEFAULT_HEALTH,
      intervalMs: ms("BERTH_SCHEDULER_HEALTH_INTERVAL_MS", DEFAULT_HEALTH.intervalMs, 100),
      timeoutMs: ms("BERTH_SCHEDULER_HEALTH_TIMEOUT_MS", DEFAULT_HEALTH.timeoutMs, 100),
      startTimeoutMs: ms("BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS", DEFAULT_HEALTH.startTimeoutMs, 1000),
      workerMinReadyMs: ms("BERTH_SCHEDULER_WORKER_MIN_READY_MS", DEFAULT_HEALTH.workerMinReadyMs, 1),
    },
    restartBackoffMs: ms("BERTH_SCHEDULER_RESTART_BACKOFF_MS", 1000, 10),
    maxRestartBackoffMs: ms("BERTH_SCHEDULER_MAX_RESTART_BACKOFF_MS", 30_000, 10),
    logLinesPerReplica: envInt(env, "BERTH_SCHEDULER_LOG_LINES", 1000, { min: 10, max: 1_000_000 }),
    logFileMaxBytes: envInt(env, "BERTH_SCHEDULER_LOG_FILE_MAX_BYTES", 8 * 1024 * 1024, { min: 4096 }),
    autoscale: {
      sampleIntervalMs: ms("BERTH_SCHEDULER_AUTOSCALE_SAMPLE_MS", 5000, 100),
      scaleUpWindowMs: ms("BERTH_SCHEDULER_AUTOSCALE_UP_WINDOW_MS", 15_000),
      scaleDownWindowMs: ms("BERTH_SCHEDULER_AUTOSCALE_DOWN_WINDOW_MS", 120_000),
    },
    replicaBaseEnv,
    kubernetes: {
      ...readKubernetesTarget(env),
      containerPort: envInt(env, "BERTH_KUBERNETES_CONTAINER_PORT", 5000, { min: 1, max: 65535 }),
      resolveImageDigests: envBool(env, "BERTH_RESOLVE_IMAGE_DIGESTS", true),
      insecureRegistries: envString(env, "BERTH_INSECURE_REGISTRIES", "")
        .split(",")
        .map((host) => host.trim())
        .filter((host) => host !== ""),
      registryTimeoutMs: ms("BERTH_REGISTRY_TIMEOUT_MS", 5_000, 100),
    },
    localRuntime: localRuntimeFrom(env),
  };
}
