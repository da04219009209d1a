import type { LogStream, ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import type { HealthSettings } from "../health-settings.js";

/** Everything an engine needs to run one replica of a process type. */
export interface ReplicaSpec {
  /** Unique name, e.g. `shop-web-v3-x7k2q`. */
  name: string;
  app: string;
  processType: string;
  routingClass: RoutingClass;
  index: number;
  releaseVersion: number;
  command: string;
  /** The release's unpacked source (local engine). */
  workDir: string;
  /** Config vars and BERTH_* variables; the engine adds PORT. */
  env: Record<string, string>;
  health: HealthSettings;
  zone: string;
}

/** Where a replica stands, as the engine sees it now. */
export interface ReplicaStatus {
  name: string;
  app: string;
  state: ReplicaState;
  /** Passing its health check: may receive traffic. */
  ready: boolean;
  restarts: number;
  startedAt: Date | undefined;
  host: string;
  port: number;
  /** An opaque handle to find the replica again after the scheduler restarts. */
  runtimeId: string;
}

/** The one-off `release` command of a deploy. */
export interface ReleaseTaskSpec {
  /** Unique per release, e.g. `shop-release-v3`; the same name finds it again after a restart. */
  name: string;
  app: string;
  releaseVersion: number;
  command: string;
  workDir: string;
  env: Record<string, string>;
  timeoutMs: number;
}

/** How a release task ended. */
export interface ReleaseTaskResult {
  /** The command's exit code; null when it was killed or its end was not observed. */
  exitCode: number | null;
  timedOut: boolean;
  /** Why it failed, when the engine knows better than the exit code tells. */
  message?: string;
  /** The last lines it printed. */
  logTail: string[];
}

/** A release task under way. */
export interface RunningReleaseTask {
  runtimeId: string;
  result: Promise<ReleaseTaskResult>;
}

/** One line a replica or task printed. */
export interface LogEntry {
  time: Date;
  app: string;
  processType: string;
  replica: string;
  releaseVersion: number;
  stream: LogStream;
  text: string;
}

/** Which lines a log reader wants; empty fields match everything. */
export interface LogFilter {
  app: string;
  processType?: string;
  replica?: string;
}

/** Logs of replicas and tasks: recent lines and new ones as they come. */
export interface LogSource {
  /** The last `lines` matching lines, oldest first. */
  tail(filter: LogFilter, lines: number): LogEntry[];
  /** Calls `listener` with every new matching line until the returned function is called. */
  follow(filter: LogFilter, listener: (entry: LogEntry) => void): () => void;
}

/**
 * What runs replicas and tasks on one machine or cluster. The scheduler's
 * controller drives it; it reports every change of a replica's state.
 */
export interface ReplicaEngine {
  /** Starts a replica; it reports STARTING, then UP once its health check passes. */
  startReplica(spec: ReplicaSpec): Promise<ReplicaStatus>;
  /**
   * Takes over a replica started before a restart; undefined when it is gone.
   * An empty `runtimeId` (the scheduler died before recording it) is looked up by the replica's name.
   */
  adoptReplica(spec: ReplicaSpec, runtimeId: string): Promise<ReplicaStatus | undefined>;
  /** After a restart: stops whatever still runs from a previous run and is not among `known`; returns their names. */
  stopStrays(known: ReadonlySet<string>, graceMs: number): Promise<string[]>;
  /** SIGTERM, then SIGKILL once `graceMs` passed; resolves when it has exited. */
  stopReplica(name: string, graceMs: number): Promise<void>;
  replicaStatus(name: string): ReplicaStatus | undefined;
  /** Calls `listener` on every change of any replica's status. */
  onReplicaChange(listener: (status: ReplicaStatus) => void): () => void;
  /** Runs a release task once. */
  startReleaseTask(spec: ReleaseTaskSpec): Promise<RunningReleaseTask>;
  /**
   * Waits for a task started before a restart (never starts it again). An
   * empty `runtimeId` is looked up by the task's name; undefined means the
   * task certainly never started, so it may be started now.
   */
  resumeReleaseTask(spec: ReleaseTaskSpec, runtimeId: string, deadline: Date): Promise<RunningReleaseTask | undefined>;
  /** CPU use of a replica in millicores since the previous sample; undefined for the first. */
  sampleCpuMillis(name: string): Promise<number | undefined>;
  readonly logs: LogSource;
  /** Stops every replica and task. */
  close(graceMs?: number): Promise<void>;
}
