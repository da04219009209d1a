import type { RoutingClass } from "@berth/proto/type/v1/process";
import type { HealthSettings } from "../../health-settings.js";

/** Everything the local engine needs to run one replica of a process type. */
export interface ReplicaSpec {
  /** Unique name, e.g. `shop-web-v3-x7k2q`. */
  name: string;
  app: string;
  processType: string;
  routingClass: RoutingClass;
  index: number;
  releaseVersion: number;
  command: string;
  /** The release's unpacked source. */
  workDir: string;
  /** Config vars and BERTH_* variables; the engine adds PORT. */
  env: Record<string, string>;
  health: HealthSettings;
  zone: string;
}

/** One run of a replica's command: a process group, or a container. */
export interface ReplicaRun {
  /** Finds this run again after a scheduler restart (see ReplicaRuntime.adopt). */
  readonly runtimeId: string;
  /** How log lines name the run, e.g. `pid 4242`. */
  readonly label: string;
  /** Where health checks and the routers reach it. */
  readonly host: string;
  /** The port it was told to listen on (PORT). */
  readonly port: number;
  /** Resolves with the exit code (null when killed or not observed) once the run ended. */
  readonly exited: Promise<number | null>;
}

/**
 * How the local engine runs one replica: the part that differs between a
 * child process and a container. The supervisor above it (probes, restarts
 * with backoff, logs, adoption) is the same for every runtime.
 */
export interface ReplicaRuntime {
  /**
   * Starts a run of `spec` on an address and port of the runtime's choosing
   * (given to it as PORT), its output appended to `stdout.log` and
   * `stderr.log` in `directory`.
   */
  spawn(spec: ReplicaSpec, directory: string): Promise<ReplicaRun>;
  /** The run `runtimeId` names, when it still runs; undefined otherwise (or for an id of another runtime). */
  adopt(runtimeId: string): Promise<ReplicaRun | undefined>;
  /** Asks every process of the run to stop (SIGTERM); true once all have exited, false when `graceMs` passed first. */
  stop(run: ReplicaRun, graceMs: number): Promise<boolean>;
  /** Kills every process of the run (SIGKILL); resolves once they are gone, or after a bounded wait. */
  kill(run: ReplicaRun): Promise<void>;
  /** CPU time every process of the run used so far, in milliseconds. */
  cpuMs(run: ReplicaRun): Promise<number>;
}
