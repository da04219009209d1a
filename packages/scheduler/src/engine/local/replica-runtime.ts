import type { RoutingClass } from "@berth/proto/type/v1/process";
import type { HealthSettings } from "../../health-settings.js";
import type { ReleaseTaskSpec } from "../engine.js";
import type { CommandLine } from "./command-stream.js";

/** Everything the local engine needs to run one replica of a process type. */
export interface ReplicaSpec {
  /** Unique name, e.g. `shop-web-v3-x7k2q`. */
  name: string;
  app: string;
  /** The app's owner team (containers never reach another team's). */
  team: string;
  processType: string;
  routingClass: RoutingClass;
  index: number;
  releaseVersion: number;
  command: string;
  /** The release's unpacked source. */
  workDir: string;
  /** Config vars and BERTH_* variables; the runtime adds HOST and PORT (where to listen). */
  env: Record<string, string>;
  health: HealthSettings;
  zone: string;
  /** The pod size's (or the explicit) resources: the container's CPU quota and memory limit. */
  cpuMillis: number;
  memoryMb: number;
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
  /** Resolves with the reason the run ended when the runtime knows more than the exit code (`OOMKilled`). */
  readonly exitReason?: Promise<string | undefined>;
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
  /** What separates a run from the platform and from other apps: `container`, or `none` for plain processes. */
  readonly isolation: "container" | "none";
  /** The run passes its health check, or no longer does (a container joins or leaves its process's virtual address). */
  readinessChanged?(run: ReplicaRun, ready: boolean): Promise<void>;
  /** After a restart: removes whatever the runtime still holds for runs not among `keep` (their names). */
  removeStrays?(keep: ReadonlySet<string>): Promise<void>;
  /**
   * The command line that runs a release task to its end and exits with its
   * code (a container prepared for it); `sh -c <command>` for plain processes.
   */
  taskCommand(task: ReleaseTaskSpec): Promise<string[]>;
  /** Releases what a finished (or killed) task held; says why it ended when the exit code does not (`OOMKilled`). */
  taskEnded(task: ReleaseTaskSpec): Promise<string | undefined>;
  /** How to run a shell command beside `run` (`ps:exec`): in its container, with its environment and working directory. */
  execCommand(run: ReplicaRun, spec: ReplicaSpec, command: string): CommandLine;
}
