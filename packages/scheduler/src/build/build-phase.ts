import { join } from "node:path";
import { LogStream } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { appKey, rolloutKey } from "../change-feed.js";
import type { BuildTask, BuildTaskRunner, LogReader, ReleaseTaskResult, RunningReleaseTask } from "../engine/engine.js";
import type { ControllerContext } from "../reconcile/context.js";
import { recordRolloutEvent } from "../reconcile/rollout-events.js";
import { releaseEnvironment } from "../release-commands.js";
import { setBuildPhase, setReleaseFailure, setReleaseStatus } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { createBuildCache } from "./build-cache.js";
import { nodeBuildCommand, nodeBuildOf } from "./node-source.js";

/** What the build phase works with. */
export type BuildPhaseContext = Pick<ControllerContext, "db" | "feed" | "config" | "logger" | "queue">;

/** Builds each source release once, before its release phase. */
export interface BuildPhase {
  /** Moves the build of `rollout`'s release on; true once there is nothing (more) to build. */
  advance(rollout: RolloutRecord, release: ReleaseRecord): Promise<boolean>;
  /** Drops what is cached for an app that is gone. */
  forget(app: string): Promise<void>;
  /** Resolves once no build result is being recorded. */
  settled(): Promise<void>;
}

/** The name of a release's build task: its log lines carry it, and a restarted scheduler finds the task by it. */
export function buildTaskName(release: Pick<ReleaseRecord, "app" | "version">): string {
  return `${release.app}-build-v${release.version}`;
}

/** Output lines go out as one event at most this often, or once this many are waiting. */
const OUTPUT_FLUSH_MS = 250;
const OUTPUT_BATCH_LINES = 50;

const NPM_QUIET = { npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" };

function failureMessage(result: ReleaseTaskResult, timeoutMs: number): string {
  if (result.message !== undefined) return `the build failed: ${result.message}`;
  if (result.timedOut) return `the build did not finish within ${timeoutMs} ms`;
  if (result.exitCode === null) return "the build was killed";
  return `the build exited with code ${result.exitCode}`;
}

/**
 * The build step of a rollout, before its release phase: for a Node source
 * (package.json and an npm lockfile) `npm ci --omit=dev` and the `build`
 * script, in the engine's task runner (a container on runc), with
 * node_modules cached per app by lockfile. Its output goes into the rollout's
 * progress as it comes; a failed build fails the rollout, and the release
 * serving keeps serving. A scheduler that restarts mid-build waits for the
 * same task (found by name) or starts it again.
 */
export function createBuildPhase(ctx: BuildPhaseContext, runner: BuildTaskRunner | undefined, logs: Pick<LogReader, "follow">): BuildPhase {
  const cache = createBuildCache(join(ctx.config.dataDir, "build-cache"));
  const inFlight = new Map<string, Promise<void>>();

  async function output(rollout: RolloutRecord, lines: string[]): Promise<void> {
    await recordRolloutEvent(ctx.db, ctx.feed, rollout.id, RolloutEventKind.BUILD_OUTPUT, { processType: "build", logTail: lines });
  }

  /** Streams the task's lines into the rollout, in batches; the returned function stops and sends what is left. */
  function streamOutput(rollout: RolloutRecord, release: ReleaseRecord): () => Promise<void> {
    let waiting: string[] = [];
    let sending = Promise.resolve();
    const flush = () => {
      if (waiting.length === 0) return sending;
      const lines = waiting;
      waiting = [];
      sending = sending.then(() => output(rollout, lines)).catch((error: unknown) => ctx.logger.warn("could not record build output", { error }));
      return sending;
    };
    const timer = setInterval(() => void flush(), OUTPUT_FLUSH_MS);
    const stop = logs.follow({ app: release.app, replica: buildTaskName(release) }, (entry) => {
      if (entry.stream === LogStream.SYSTEM) return;
      waiting.push(entry.text);
      if (waiting.length >= OUTPUT_BATCH_LINES) void flush();
    });
    return async () => {
      stop();
      clearInterval(timer);
      await flush();
    };
  }

  async function succeed(rollout: RolloutRecord, release: ReleaseRecord): Promise<void> {
    await ctx.db.transaction(async (tx) => {
      await setBuildPhase(tx, release.app, release.version, "succeeded");
      await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.BUILD_SUCCEEDED, { processType: "build", message: "the build succeeded" });
    });
  }

  async function fail(rollout: RolloutRecord, release: ReleaseRecord, message: string, logTail: string[]): Promise<void> {
    const reason = "BUILD_FAILED";
    await ctx.db.transaction(async (tx) => {
      await setBuildPhase(tx, release.app, release.version, "failed");
      await setReleaseFailure(tx, release.app, release.version, { status: "failed", reason, message, log: logTail });
      await setRolloutState(tx, rollout.id, "failed", { reason, message, finished: true });
      await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.BUILD_FAILED, { processType: "build", reason, message, logTail });
      await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.ROLLOUT_FAILED, {
        reason,
        message: `${message}; v${rollout.previousReleaseVersion || "-"} keeps serving`,
      });
    });
    ctx.logger.warn("build failed", { app: release.app, release: release.version, message });
  }

  function follow(rollout: RolloutRecord, release: ReleaseRecord, running: RunningReleaseTask, stopOutput: () => Promise<void>, save: () => Promise<void>) {
    const record = async (result: ReleaseTaskResult) => {
      await stopOutput();
      if (result.exitCode === 0) {
        await save().catch((error: unknown) => ctx.logger.warn("could not keep the build's node_modules", { app: release.app, error }));
        await succeed(rollout, release);
      } else {
        await fail(rollout, release, failureMessage(result, ctx.config.releaseTimeoutMs), result.logTail);
      }
      ctx.feed.notify(rolloutKey(rollout.id));
      ctx.feed.notify(appKey(release.app));
    };
    // A scheduler that stops leaves the task running; the next one resumes it (phase "running").
    const detached = async (error: unknown) => {
      await stopOutput();
      ctx.logger.info("stopped following a build", { app: release.app, release: release.version, reason: String(error) });
    };
    const done = running.result
      .then(record, detached)
      .catch((error: unknown) => ctx.logger.error("could not record the build", { app: release.app, error }))
      .finally(() => {
        inFlight.delete(rollout.id);
        ctx.queue.enqueue(release.app);
      });
    inFlight.set(rollout.id, done);
  }

  /**
   * Runs (or, after a restart, finds again) the build; `resuming` never
   * starts a second task beside one still running. True when the build is
   * already done (nothing to run), false while it runs or when it failed.
   */
  async function run(rollout: RolloutRecord, release: ReleaseRecord, resuming: boolean): Promise<boolean> {
    const build = await nodeBuildOf(release.sourceDir);
    if (build === undefined) {
      await succeed(rollout, release);
      return true;
    }
    const env = { ...releaseEnvironment(release, "build"), ...NPM_QUIET, npm_config_cache: `/tmp/berth-npm-cache-${release.app}` };
    const restored = !resuming && (await cache.restore(release.app, build.lockfileSha256, release.sourceDir));
    if (restored) await output(rollout, ["node_modules restored from the build cache (the lockfile did not change)"]);
    const command = nodeBuildCommand(build, restored);
    if (command === undefined || runner === undefined) {
      await succeed(rollout, release);
      return true;
    }
    const task: BuildTask = { command, env };
    const stopOutput = streamOutput(rollout, release);
    const save = async () => {
      if (!restored) await cache.save(release.app, build.lockfileSha256, release.sourceDir);
    };
    let running: RunningReleaseTask | undefined;
    try {
      if (resuming) running = await runner.resume(release, task, new Date(Date.now() + ctx.config.releaseTimeoutMs));
      running ??= await runner.start(release, task);
    } catch (error) {
      await stopOutput();
      await fail(rollout, release, `could not start the build: ${String(error)}`, []);
      return false;
    }
    follow(rollout, release, running, stopOutput, save);
    return false;
  }

  return {
    async advance(rollout, release) {
      switch (release.buildPhase) {
        case "none":
        case "succeeded":
          return true;
        case "failed":
          return false;
        case "pending":
          await ctx.db.transaction(async (tx) => {
            await setBuildPhase(tx, release.app, release.version, "running");
            await setReleaseStatus(tx, release.app, release.version, "pending");
            await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.BUILD_STARTED, { processType: "build", message: "building the source" });
          });
          ctx.feed.notify(rolloutKey(rollout.id));
          return run(rollout, release, false);
        case "running":
          return inFlight.has(rollout.id) ? false : run(rollout, release, true);
      }
    },
    forget: (app) => cache.forget(app),
    async settled() {
      await Promise.all(inFlight.values());
    },
  };
}
