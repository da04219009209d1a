import { writeFileSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@berth/kit";
import { LogStream, ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import type { LogEntry, LogSource, ReleaseTaskResult, ReleaseTaskSpec, RunningReleaseTask } from "../engine.js";
import { childExit, parseProcessRuntimeId, pollUntilGone, processRuntimeId, spawnInGroup } from "./child-process-runtime.js";
import { createChildProcessRuntime } from "./child-process-runtime.js";
import type { CommandLine } from "./command-stream.js";
import { tailFile } from "./file-tail.js";
import type { FileTail } from "./file-tail.js";
import { createLogHub } from "../log-hub.js";
import { probeHttp, probeTcp } from "./probes.js";
import { processStartTime, signalProcessGroup } from "./process-table.js";
import type { ReplicaRun, ReplicaRuntime, ReplicaSpec } from "./replica-runtime.js";

/** Where a replica stands, as the supervisor sees it now. */
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
  /** The runtime's isolation: `container`, or `none` for plain processes. */
  isolation: string;
  /** Why its last run ended, when the runtime knows more than the exit code (`OOMKilled`); empty otherwise. */
  lastExitReason: string;
}

/**
 * Runs replicas and release tasks on this machine: starts them through a
 * ReplicaRuntime, probes their health, restarts crashed ones with backoff,
 * keeps their logs, and reports every change of a replica's state.
 */
export interface ReplicaSupervisor {
  /** Starts a replica; it reports STARTING, then UP once its health check passes. */
  startReplica(spec: ReplicaSpec): Promise<ReplicaStatus>;
  /**
   * Takes over a replica started before a restart; undefined when it is gone.
   * An empty `runtimeId` (the scheduler died before recording it) is looked up by the replica's name.
   */
  adoptReplica(spec: ReplicaSpec, runtimeId: string): Promise<ReplicaStatus | undefined>;
  /** After a restart: stops whatever still runs from a previous run and is not among `known`; returns their names. */
  stopStrays(known: ReadonlySet<string>, graceMs: number): Promise<string[]>;
  /**
   * The replica is retiring: it leaves the runtime's service set (a tcp
   * process's virtual address) at once, ready or not, and never joins it
   * again, while it keeps running to drain.
   */
  retireReplica(name: string): void;
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
  /** How to run a shell command beside replica `name` (`ps:exec`); undefined when it does not run now. */
  execCommand(name: string, command: string): CommandLine | undefined;
  /** How to run a one-off task (`run`) to its end; `ended` releases what it held once it exited and says why, when the exit code does not. */
  oneOffCommand(spec: ReleaseTaskSpec): Promise<{ line: CommandLine; ended(): Promise<string | undefined> }>;
  readonly logs: LogSource;
  /** Stops every replica and task. */
  close(graceMs?: number): Promise<void>;
  /**
   * Stops supervising (health checks, restarts, log tails, task deadlines)
   * and leaves every replica and task running, for the next scheduler to
   * adopt: a platform restart or upgrade is no app downtime.
   */
  detach(): Promise<void>;
}

/** Settings of the replica supervisor. */
export interface ReplicaSupervisorOptions {
  /** Where replica logs and task results live. */
  directory: string;
  /** The address replicas listen on (child-process runtime). */
  host: string;
  /** The environment every process starts from (PATH, HOME, ...); config vars go on top. */
  baseEnv: Record<string, string>;
  /** How replicas run; child processes by default. */
  runtime?: ReplicaRuntime;
  /** First delay before restarting a crashed replica; doubles up to maxRestartBackoffMs. */
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  logLinesPerReplica: number;
  logFileMaxBytes: number;
  /** How long a timed-out release task gets between SIGTERM and SIGKILL. */
  taskKillGraceMs: number;
  logger: Logger;
}

/** While a replica has not been healthy yet, it is probed at least this often, so readiness is seen quickly. */
const STARTUP_PROBE_MS = 25;
const LOG_POLL_MS = 1000;
const TASK_LOG_TAIL_LINES = 20;
/** How long a release task's shell may take to record its pid after being spawned. */
const TASK_PID_WAIT_MS = 2000;

interface Supervised {
  spec: ReplicaSpec;
  status: ReplicaStatus;
  run: ReplicaRun | undefined;
  stopping: boolean;
  successes: number;
  failures: number;
  /** Since when the replica has been not ready (start, or the moment it turned unhealthy). */
  waitingSince: number;
  crashStreak: number;
  timer: NodeJS.Timeout | undefined;
  tails: FileTail[];
  cpuSample: { cpuMs: number; at: number } | undefined;
  /** Out of the runtime's service set for good (see retireReplica). */
  retiring: boolean;
}

/**
 * The replica supervisor: replicas run through `runtime` (child processes in
 * their own process groups by default), with stdout/stderr appended to files
 * under `directory` (so they survive a scheduler crash and can be adopted),
 * real health probes, restarts with backoff, SIGTERM then SIGKILL.
 */
export function createReplicaSupervisor(options: ReplicaSupervisorOptions): ReplicaSupervisor {
  const { logger } = options;
  const runtime = options.runtime ?? createChildProcessRuntime({ host: options.host, baseEnv: options.baseEnv });
  const hub = createLogHub({ linesPerReplica: options.logLinesPerReplica, finishedReplicasKept: 200 });
  const replicas = new Map<string, Supervised>();
  const listeners = new Set<(status: ReplicaStatus) => void>();
  // Release tasks being waited for; detach() lets go of them without stopping them.
  const tasks = new Set<{ pid: number; detach(): void }>();

  const replicaDirectory = (name: string) => join(options.directory, "replicas", name);
  const taskDirectory = (name: string) => join(options.directory, "tasks", name);

  function emit(replica: Supervised): void {
    const snapshot = { ...replica.status };
    for (const listener of listeners) listener(snapshot);
  }

  /** How a task's lines are labelled: as its process type (`release`, or `build`), under its own name. */
  function taskLabel(spec: ReleaseTaskSpec): Pick<ReplicaSpec, "app" | "processType" | "name" | "releaseVersion"> {
    return { app: spec.app, processType: spec.processType ?? "release", name: spec.name, releaseVersion: spec.releaseVersion };
  }

  function systemLine(spec: Pick<ReplicaSpec, "app" | "processType" | "name" | "releaseVersion">, text: string): void {
    hub.append({
      time: new Date(),
      app: spec.app,
      processType: spec.processType,
      replica: spec.name,
      releaseVersion: spec.releaseVersion,
      stream: LogStream.SYSTEM,
      text,
    });
  }

  function followLogs(spec: Pick<ReplicaSpec, "app" | "processType" | "name" | "releaseVersion">, directory: string): FileTail[] {
    const line = (stream: LogStream) => (text: string) =>
      hub.append({ time: new Date(), app: spec.app, processType: spec.processType, replica: spec.name, releaseVersion: spec.releaseVersion, stream, text });
    return [
      tailFile(join(directory, "stdout.log"), line(LogStream.STDOUT), { pollMs: LOG_POLL_MS, maxBytes: options.logFileMaxBytes }),
      tailFile(join(directory, "stderr.log"), line(LogStream.STDERR), { pollMs: LOG_POLL_MS, maxBytes: options.logFileMaxBytes }),
    ];
  }

  function setState(replica: Supervised, state: ReplicaState, ready: boolean): void {
    if (replica.status.state === state && replica.status.ready === ready) return;
    if (replica.status.ready !== ready && replica.run !== undefined && !replica.retiring) tellRuntime(replica, replica.run, ready);
    replica.status.state = state;
    replica.status.ready = ready;
    emit(replica);
  }

  function tellRuntime(replica: Supervised, run: ReplicaRun, ready: boolean): void {
    void runtime.readinessChanged?.(run, ready).catch((error) => logger.error("could not update the replica's network", { replica: replica.spec.name, error }));
  }

  function clearTimer(replica: Supervised): void {
    if (replica.timer) clearTimeout(replica.timer);
    replica.timer = undefined;
  }

  function schedule(replica: Supervised, delayMs: number, action: () => void): void {
    clearTimer(replica);
    replica.timer = setTimeout(action, delayMs);
    replica.timer.unref();
  }

  async function probe(replica: Supervised, run: ReplicaRun): Promise<boolean> {
    const { health, routingClass } = replica.spec;
    if (routingClass === RoutingClass.WEB) return probeHttp(run.host, run.port, health.path, health.timeoutMs);
    if (routingClass === RoutingClass.TCP || routingClass === RoutingClass.RTC) return probeTcp(run.host, run.port, health.timeoutMs);
    return true;
  }

  async function checkHealth(replica: Supervised, run: ReplicaRun): Promise<void> {
    if (replica.stopping || replica.run !== run) return;
    const ok = await probe(replica, run);
    if (replica.stopping || replica.run !== run) return;
    const { health } = replica.spec;
    const now = Date.now();
    if (ok) {
      replica.successes += 1;
      replica.failures = 0;
    } else {
      replica.failures += 1;
      replica.successes = 0;
    }
    const age = now - (replica.status.startedAt?.getTime() ?? now);
    if (replica.status.ready) {
      if (!ok && replica.failures >= health.unhealthyThreshold) {
        replica.waitingSince = now;
        systemLine(replica.spec, `health check failed ${replica.failures} times in a row: unhealthy`);
        setState(replica, ReplicaState.UNHEALTHY, false);
      }
    } else if (ok && replica.successes >= health.healthyThreshold && age >= health.minReadyMs) {
      replica.crashStreak = 0;
      systemLine(replica.spec, "healthy");
      setState(replica, ReplicaState.UP, true);
    } else if (now - replica.waitingSince > health.startTimeoutMs) {
      systemLine(replica.spec, `not healthy within ${health.startTimeoutMs} ms: restarting`);
      setState(replica, ReplicaState.UNHEALTHY, false);
      restart(replica, run);
      return;
    }
    const everHealthy = replica.status.ready || replica.status.state === ReplicaState.UNHEALTHY;
    let delay = everHealthy ? health.intervalMs : Math.min(health.intervalMs, STARTUP_PROBE_MS);
    if (ok && !replica.status.ready && age < health.minReadyMs) delay = Math.min(delay, health.minReadyMs - age);
    schedule(replica, delay, () => void checkHealth(replica, run));
  }

  async function launch(replica: Supervised): Promise<void> {
    const { spec } = replica;
    const run = await runtime.spawn(spec, replicaDirectory(spec.name));
    // Written at once, so that a scheduler that dies before recording the replica can still find it.
    writeFileSync(join(replicaDirectory(spec.name), "runtime-id"), run.runtimeId);
    begin(replica, run, new Date());
    systemLine(spec, `started: ${run.label}, port ${run.port}, release v${spec.releaseVersion}`);
  }

  function begin(replica: Supervised, run: ReplicaRun, startedAt: Date): void {
    if (replica.stopping) {
      // Stopped while this run was being spawned.
      void runtime.kill(run);
      return;
    }
    replica.run = run;
    replica.successes = 0;
    replica.failures = 0;
    replica.waitingSince = Date.now();
    replica.cpuSample = undefined;
    replica.status = {
      ...replica.status,
      state: ReplicaState.STARTING,
      ready: false,
      startedAt,
      host: run.host,
      port: run.port,
      runtimeId: run.runtimeId,
    };
    emit(replica);
    void Promise.all([run.exited, run.exitReason]).then(([code, reason]) => onExit(replica, run, code, reason));
    void checkHealth(replica, run);
  }

  function onExit(replica: Supervised, run: ReplicaRun, code: number | null, reason: string | undefined): void {
    if (replica.run !== run || replica.stopping) return;
    // Whatever the crashed command left behind goes with it.
    void runtime.kill(run);
    clearTimer(replica);
    replica.status.lastExitReason = reason ?? "";
    systemLine(
      replica.spec,
      reason === "OOMKilled" ? "OOMKilled: used more memory than its pod size allows" : `exited with ${code === null ? "a signal" : `code ${code}`}`,
    );
    setState(replica, ReplicaState.CRASHED, false);
    const delay = Math.min(options.restartBackoffMs * 2 ** replica.crashStreak, options.maxRestartBackoffMs);
    replica.crashStreak += 1;
    schedule(replica, delay, () => void relaunch(replica));
  }

  async function relaunch(replica: Supervised): Promise<void> {
    if (replica.stopping) return;
    replica.status.restarts += 1;
    try {
      await launch(replica);
    } catch (error) {
      logger.error("could not restart replica", { replica: replica.spec.name, error });
      replica.crashStreak += 1;
      schedule(replica, options.maxRestartBackoffMs, () => void relaunch(replica));
    }
  }

  /** Kills a run that is unhealthy; its exit triggers the restart with backoff. */
  function restart(replica: Supervised, run: ReplicaRun): void {
    clearTimer(replica);
    void runtime.kill(run);
  }

  function supervise(spec: ReplicaSpec): Supervised {
    const replica: Supervised = {
      spec,
      status: {
        name: spec.name,
        app: spec.app,
        state: ReplicaState.STARTING,
        ready: false,
        restarts: 0,
        startedAt: undefined,
        host: "",
        port: 0,
        runtimeId: "",
        isolation: runtime.isolation,
        lastExitReason: "",
      },
      run: undefined,
      stopping: false,
      successes: 0,
      failures: 0,
      waitingSince: Date.now(),
      crashStreak: 0,
      timer: undefined,
      tails: followLogs(spec, replicaDirectory(spec.name)),
      cpuSample: undefined,
      retiring: false,
    };
    replicas.set(spec.name, replica);
    return replica;
  }

  async function awaitTask(spec: ReleaseTaskSpec, pid: number, exited: Promise<number | null>, deadline: Date): Promise<ReleaseTaskResult> {
    const tails = followLogs(taskLabel(spec), taskDirectory(spec.name));
    let timedOut = false;
    const killer = setTimeout(
      () => {
        timedOut = true;
        systemLine(taskLabel(spec), `timed out after ${spec.timeoutMs} ms: stopping`);
        signalProcessGroup(pid, "SIGTERM");
        setTimeout(() => signalProcessGroup(pid, "SIGKILL"), options.taskKillGraceMs).unref();
      },
      Math.max(0, deadline.getTime() - Date.now()),
    );
    const detached = new Promise<never>((_resolve, reject) => {
      tasks.add({
        pid,
        detach() {
          clearTimeout(killer);
          void Promise.all(tails.map((tail) => tail.close()));
          reject(new Error("the scheduler stopped following this release task; its next run resumes it"));
        },
      });
    });
    try {
      await Promise.race([exited, detached]);
    } finally {
      clearTimeout(killer);
    }
    for (const task of tasks) if (task.pid === pid) tasks.delete(task);
    signalProcessGroup(pid, "SIGKILL");
    const reason = await runtime.taskEnded(spec);
    await Promise.all(tails.map((tail) => tail.close()));
    const recorded = await readFile(join(taskDirectory(spec.name), "exit-code"), "utf8").catch(() => "");
    const exitCode = /^\d+\s*$/.test(recorded) && !timedOut ? Number(recorded) : null;
    systemLine(taskLabel(spec), `${taskLabel(spec).processType} task ended: ${reason ?? (exitCode === null ? "killed" : `exit code ${exitCode}`)}`);
    const logTail = hub
      .tail({ app: spec.app, replica: spec.name }, TASK_LOG_TAIL_LINES + 1)
      .filter((entry: LogEntry) => entry.stream !== LogStream.SYSTEM)
      .slice(-TASK_LOG_TAIL_LINES)
      .map((entry) => entry.text);
    hub.retire(spec.name);
    return { exitCode: reason === undefined ? exitCode : null, timedOut, logTail, ...(reason === undefined ? {} : { message: reason }) };
  }

  return {
    async startReplica(spec) {
      if (replicas.has(spec.name)) throw new Error(`replica ${spec.name} is already running`);
      const replica = supervise(spec);
      try {
        await launch(replica);
      } catch (error) {
        replicas.delete(spec.name);
        await Promise.all(replica.tails.map((tail) => tail.close()));
        throw error;
      }
      return { ...replica.status };
    },

    async adoptReplica(spec, runtimeId) {
      const recorded = runtimeId || (await readFile(join(replicaDirectory(spec.name), "runtime-id"), "utf8").catch(() => ""));
      if (recorded === "" || replicas.has(spec.name)) return undefined;
      const run = await runtime.adopt(recorded);
      if (run === undefined) return undefined;
      const replica = supervise(spec);
      begin(replica, run, new Date());
      systemLine(spec, `adopted after a scheduler restart: ${run.label}, port ${run.port}`);
      return { ...replica.status };
    },

    retireReplica(name) {
      const replica = replicas.get(name);
      if (replica === undefined || replica.retiring) return;
      replica.retiring = true;
      if (replica.status.ready && replica.run !== undefined) tellRuntime(replica, replica.run, false);
    },

    async stopReplica(name, graceMs) {
      const replica = replicas.get(name);
      if (replica === undefined) return;
      if (replica.stopping) {
        await replica.run?.exited;
        return;
      }
      replica.stopping = true;
      clearTimer(replica);
      const run = replica.run;
      setState(replica, ReplicaState.STOPPING, false);
      if (run !== undefined) {
        systemLine(replica.spec, `stopping: SIGTERM, SIGKILL after ${graceMs} ms`);
        if (!(await runtime.stop(run, graceMs))) {
          systemLine(replica.spec, "still running after the grace period: SIGKILL");
          await runtime.kill(run);
        }
        await run.exited;
      }
      systemLine(replica.spec, "stopped");
      await Promise.all(replica.tails.map((tail) => tail.close()));
      replicas.delete(name);
      hub.retire(name);
      await rm(replicaDirectory(name), { recursive: true, force: true });
      setState(replica, ReplicaState.STOPPED, false);
    },

    async stopStrays(known, graceMs) {
      const names = await readdir(join(options.directory, "replicas")).catch(() => [] as string[]);
      const strays = names.filter((name) => !known.has(name) && !replicas.has(name));
      await Promise.all(
        strays.map(async (name) => {
          const run = await runtime.adopt(await readFile(join(replicaDirectory(name), "runtime-id"), "utf8").catch(() => ""));
          if (run !== undefined && !(await runtime.stop(run, graceMs))) await runtime.kill(run);
          await rm(replicaDirectory(name), { recursive: true, force: true });
        }),
      );
      await runtime.removeStrays?.(new Set([...known, ...replicas.keys()]));
      return strays;
    },

    replicaStatus(name) {
      const replica = replicas.get(name);
      return replica && { ...replica.status };
    },

    onReplicaChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async startReleaseTask(spec) {
      const directory = taskDirectory(spec.name);
      await rm(directory, { recursive: true, force: true });
      // The outer shell writes its own pid first and the command's exit code
      // last, so a restarted scheduler finds the task, or its result, even if
      // it died before recording anything: it never runs the task twice.
      const { child, pid, startTime } = await spawnInGroup(
        directory,
        [
          'echo $$ > "$1"; e="$2"; shift 2; "$@"; echo $? > "$e"',
          "berth-release",
          join(directory, "pid"),
          join(directory, "exit-code"),
          ...(await runtime.taskCommand(spec)),
        ],
        spec.workDir,
        spec.env,
      );
      systemLine(taskLabel(spec), `${taskLabel(spec).processType} task started: pid ${pid}`);
      return {
        runtimeId: processRuntimeId({ pid, startTime, port: 0 }),
        result: awaitTask(spec, pid, childExit(child), new Date(Date.now() + spec.timeoutMs)),
      };
    },

    async resumeReleaseTask(spec, runtimeId, deadline) {
      const directory = taskDirectory(spec.name);
      let found = parseProcessRuntimeId(runtimeId);
      if (found === undefined) {
        // The scheduler may have died between the spawn and the shell writing its pid: give it a moment.
        const waitUntil = Date.now() + TASK_PID_WAIT_MS;
        let pid = "";
        while ((pid = await readFile(join(directory, "pid"), "utf8").catch(() => "")) === "" && Date.now() < waitUntil) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        if (!/^\d+\s*$/.test(pid)) return undefined;
        found = { pid: Number(pid), startTime: (await processStartTime(Number(pid))) ?? -1, port: 0 };
      }
      return {
        runtimeId: processRuntimeId(found),
        result: awaitTask(spec, found.pid, pollUntilGone(found.pid, found.startTime), deadline),
      };
    },

    async sampleCpuMillis(name) {
      const replica = replicas.get(name);
      const run = replica?.run;
      if (replica === undefined || run === undefined) return undefined;
      const cpuMs = await runtime.cpuMs(run);
      const at = performance.now();
      const previous = replica.cpuSample;
      replica.cpuSample = { cpuMs, at };
      if (previous === undefined || at <= previous.at) return undefined;
      return Math.max(0, ((cpuMs - previous.cpuMs) / (at - previous.at)) * 1000);
    },

    execCommand(name, command) {
      const replica = replicas.get(name);
      if (replica?.run === undefined || replica.stopping) return undefined;
      return runtime.execCommand(replica.run, replica.spec, command);
    },

    async oneOffCommand(spec) {
      const argv = await runtime.taskCommand(spec);
      return { line: { argv, cwd: spec.workDir, env: { ...options.baseEnv, ...spec.env } }, ended: () => runtime.taskEnded(spec) };
    },

    logs: hub,

    async close(graceMs = 10_000) {
      await Promise.all([...replicas.keys()].map((name) => this.stopReplica(name, graceMs)));
      for (const task of tasks) signalProcessGroup(task.pid, "SIGKILL");
    },

    async detach() {
      const detached = [...replicas.values()];
      replicas.clear();
      for (const replica of detached) {
        // Exits and health results of these runs are no longer this supervisor's to act on.
        replica.stopping = true;
        clearTimer(replica);
      }
      for (const task of tasks) task.detach();
      tasks.clear();
      await Promise.all(detached.flatMap((replica) => replica.tails.map((tail) => tail.close())));
    },
  };
}
