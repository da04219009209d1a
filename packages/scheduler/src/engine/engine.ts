import type { LogStream } from "@berth/proto/type/v1/process";
import type { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { AppRecord } from "../store/apps.js";
import type { ReleaseRecord } from "../store/releases.js";
import type { ReplicaRecord } from "../store/replicas.js";
import type { RolloutEventFields, RolloutRecord } from "../store/rollouts.js";

/**
 * The seam between the controller and an engine. The controller
 * (`reconcile/app-controller.ts`) owns what every engine does alike: the
 * work queue, the rollout lease, the release phase, the step from the
 * release phase to rolling, and the endings of a rollout. An engine owns how
 * an app's processes run: the local engine replica by replica on this
 * machine, the kubernetes engine through Deployments.
 */
export interface Engine {
  /** Runs a release's `release` command: a supervised task locally, a Job on Kubernetes. */
  readonly releaseTasks: ReleaseTaskRunner;
  /** Builds a source release (locally); undefined for an engine that runs images, which come built. */
  readonly buildTasks?: BuildTaskRunner;
  /** Lines printed by replicas and tasks, for `logs`. */
  readonly logs: LogReader;
  /**
   * `ps:delete`: takes one replica away; what the formation asks for
   * replaces it (locally after it left the endpoints and drained, on a
   * cluster by deleting its pod, which the ReplicaSet replaces).
   */
  deleteReplica(app: AppRecord, replica: ReplicaRecord): Promise<void>;
  /** One-off commands of a release (`run`) and commands beside a replica (`ps:exec`). */
  readonly commands: CommandRunner;
  /** Called once before the first pass: takes over what a previous run left running. */
  start(hooks: EngineHooks): Promise<void>;
  /**
   * One level-triggered pass over an app: brings what runs towards `target`
   * (nothing, when the app is being deleted or has no release yet). Running
   * it again with the same state changes nothing more.
   */
  converge(pass: ConvergePass): Promise<ConvergeOutcome>;
  /** The app's record is gone: forget what the engine kept about it. */
  forgetApp(app: string): Promise<void>;
  /** Stops the engine's background work; replicas are stopped only by `stopAll`. */
  close(): Promise<void>;
}

/** What an engine may ask of its controller. */
export interface EngineHooks {
  /** Looks at the app again soon: something the engine watches changed. */
  enqueue(app: string): void;
  /** What WatchApps shows of the app changed (a type's ready replicas). */
  appChanged(app: string): void;
  /** Records a step of the app's rollout under way, if any. */
  recordAppEvent(app: string, kind: RolloutEventKind, fields: RolloutEventFields): Promise<void>;
}

/** One pass of the controller over an app. */
export interface ConvergePass {
  app: AppRecord;
  /** The release that should run; undefined when nothing should (deleting, or no release yet). */
  target: ReleaseRecord | undefined;
  /** The rollout under way, if any, in state rolling or rolling_back. */
  rollout: RolloutRecord | undefined;
  /** Records a step of `rollout`, if there is one. */
  event(kind: RolloutEventKind, fields: RolloutEventFields): Promise<void>;
  /**
   * A canary under way (`target` is then the release that serves): its
   * release runs one replica of every web type beside the serving ones, and
   * gets `percent` of their requests.
   */
  canary?: { release: ReleaseRecord; percent: number };
}

/** Why a rollout stalled: the first replica that did not become healthy, and its last lines. */
export interface StallReport {
  message: string;
  logTail: string[];
  processType?: string;
  replica?: string;
}

/** Where an app stands after a pass. */
export type ConvergeOutcome = {
  /**
   * `converged`: everything the rollout covers runs the target and is ready
   * (when deleting: nothing of the app runs any more); `progressing`: not
   * yet; `stalled`: no progress before the rollout's progress deadline.
   */
  state: "converged" | "progressing" | "stalled";
  /** Set when stalled. */
  stall?: StallReport;
  /** When the app should be looked at again without any event (epoch ms). */
  wakeAt?: number;
  /** With a canary: every web type has a ready canary replica. */
  canaryReady?: boolean;
};

/** What runs a release's `release` command. */
export interface ReleaseTaskRunner {
  start(release: ReleaseRecord): Promise<RunningReleaseTask>;
  /** The task started before a restart (by `runtimeId`, else by the release), or undefined when it certainly never started. */
  resume(release: ReleaseRecord, runtimeId: string, deadline: Date): Promise<RunningReleaseTask | undefined>;
}

/** A build of a release's source: a command run in its source directory, which it may write to. */
export interface BuildTask {
  command: string;
  env: Record<string, string>;
}

/** What runs the build of a release: once, found again by name after a restart. */
export interface BuildTaskRunner {
  start(release: ReleaseRecord, build: BuildTask): Promise<RunningReleaseTask>;
  /** The build started before a restart, or undefined when it certainly never started. */
  resume(release: ReleaseRecord, build: BuildTask, deadline: Date): Promise<RunningReleaseTask | undefined>;
}

/** The one-off `release` command of a deploy. */
export interface ReleaseTaskSpec {
  /** Unique per release, e.g. `shop-release-v3`; the same name finds it again after a restart. */
  name: string;
  app: string;
  /** The app's owner team. */
  team: string;
  releaseVersion: number;
  command: string;
  workDir: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Directories the task may write to besides its private /tmp (a build's source directory). */
  writableDirs?: string[];
  /** What its log lines are labelled as: "release" unless set ("build"). */
  processType?: string;
  /** Its container's CPU quota and memory limit; the default pod size's when unset (builds, one-off commands). */
  resources?: { cpuMillis: number; memoryMb: number };
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

/** Logs as `logs` reads them: recent lines (from the cluster, on Kubernetes, hence a promise) and new ones as they come. */
export interface LogReader {
  /** The last `lines` matching lines, oldest first. */
  tail(filter: LogFilter, lines: number): Promise<LogEntry[]>;
  /** Calls `listener` with every new matching line until the returned function is called. */
  follow(filter: LogFilter, listener: (entry: LogEntry) => void): () => void;
}

/** Logs of replicas and tasks kept in memory: recent lines and new ones as they come. */
export interface LogSource {
  /** The last `lines` matching lines, oldest first. */
  tail(filter: LogFilter, lines: number): LogEntry[];
  /** Calls `listener` with every new matching line until the returned function is called. */
  follow(filter: LogFilter, listener: (entry: LogEntry) => void): () => void;
}

/** What a running command printed, or how it ended (always last). */
export type CommandEvent =
  | { kind: "stdout" | "stderr"; data: Uint8Array }
  | {
      kind: "exit";
      /** Its exit code; null when it was killed or its end was not observed. */
      code: number | null;
      /** Why it ended when the exit code does not tell (`OOMKilled`, a timeout, the caller left); empty otherwise. */
      reason: string;
    };

/** Runs commands that are not replicas; each stops when `signal` aborts (the caller went away). */
export interface CommandRunner {
  /** Runs `task`, a one-off command with `release`'s source (or image) and config, to its end. */
  runOneOff(release: ReleaseRecord, task: ReleaseTaskSpec, signal: AbortSignal): AsyncIterable<CommandEvent>;
  /** Runs `command` beside the running replica `replica` of `app`, in its container and with its environment. */
  exec(app: string, replica: string, command: string, signal: AbortSignal): AsyncIterable<CommandEvent>;
}
