import { randomBytes } from "node:crypto";
import type { Queryable } from "@berth/kit";
import { failedPrecondition, routingClassOf } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { DEFAULT_POD_SIZE } from "./pod-sizes.js";
import { recordRolloutEvent } from "./reconcile/rollout-events.js";
import { claimRouteHostnames } from "./route-hostnames.js";
import type { AppRecord } from "./store/apps.js";
import { nextReleaseVersion } from "./store/apps.js";
import { ensureFormationEntry, listFormation } from "./store/formation.js";
import { insertRelease } from "./store/releases.js";
import type { NewRelease, ReleaseRecord } from "./store/releases.js";
import { findActiveRollout, insertRollout } from "./store/rollouts.js";
import { startingCanary } from "./store/canary.js";
import type { CanaryPolicyRecord } from "./store/canary.js";
import type { RolloutRecord } from "./store/rollouts.js";

/** What a new release is made of; the version and formation snapshot are filled in. */
export type ReleaseContent = Omit<NewRelease, "app" | "version" | "formation" | "releasePhase">;

/** What `serving` runs again, with what a change replaces (its config, and always a description): a config or health check change. */
export function sameRelease(serving: ReleaseRecord, change: Pick<ReleaseContent, "description"> & Partial<Pick<ReleaseContent, "config">>): ReleaseContent {
  return { artifact: serving.artifact, sourceDir: serving.sourceDir, processes: serving.processes, config: serving.config, rollbackOfVersion: 0, ...change };
}

/** A new rollout id. */
export function newRolloutId(): string {
  return `ro-${randomBytes(10).toString("hex")}`;
}

/** Refuses a change that needs a rollout while the app has one under way or is being deleted. */
export async function requireNoRollout(q: Queryable, app: AppRecord): Promise<void> {
  if (app.deleting) throw failedPrecondition(`app "${app.name}" is being deleted`);
  const active = await findActiveRollout(q, app.name);
  if (active !== undefined) {
    throw failedPrecondition(`app "${app.name}" has a rollout under way (${active.id}, v${active.releaseVersion}); wait until it ends`);
  }
}

/**
 * Makes the next release of `app` and the rollout that puts it live, in the
 * caller's transaction (which must hold the app's row lock). New process
 * types join the formation: `web` with one replica, others with none; types
 * already known keep their scale. With `canary`, the rollout begins as one,
 * beside the release that serves.
 */
export async function createReleaseAndRollout(
  tx: Queryable,
  app: AppRecord,
  content: ReleaseContent,
  options: { runReleasePhase: boolean; canary?: CanaryPolicyRecord },
): Promise<{ release: ReleaseRecord; rollout: RolloutRecord }> {
  await requireNoRollout(tx, app);
  if (options.canary !== undefined && app.currentReleaseVersion === 0) {
    throw failedPrecondition(`canary: app "${app.name}" has no release serving yet to run a canary beside; deploy without --canary first`);
  }
  await claimRouteHostnames(
    tx,
    app.name,
    content.processes.map((process) => process.processType),
  );
  const version = await nextReleaseVersion(tx, app.name);
  for (const process of content.processes) {
    if (process.processType === "release") continue;
    await ensureFormationEntry(tx, app.name, process.processType, process.processType === "web" ? 1 : 0, DEFAULT_POD_SIZE);
  }
  const types = new Set(content.processes.map((process) => process.processType));
  const formation = (await listFormation(tx, app.name)).filter((entry) => types.has(entry.processType)).map(({ lastAutoscale: _decision, ...entry }) => entry);
  // A canary runs beside the web types scaled up only; with none, it would measure nothing and promote itself.
  if (options.canary !== undefined && !formation.some((entry) => routingClassOf(entry.processType) === RoutingClass.WEB && entry.replicas > 0)) {
    throw failedPrecondition("canary: no web type (web or *-web) of the release is scaled up; scale one up, or deploy without --canary");
  }
  const hasReleaseCommand = options.runReleasePhase && types.has("release");
  const release = await insertRelease(tx, { ...content, app: app.name, version, formation, releasePhase: hasReleaseCommand ? "pending" : "none" });
  const rollout = await insertRollout(tx, {
    id: newRolloutId(),
    app: app.name,
    releaseVersion: version,
    previousReleaseVersion: app.currentReleaseVersion,
    state: "pending",
    processTypes: [],
    canary: options.canary && startingCanary(options.canary),
  });
  if (rollout === undefined) throw failedPrecondition(`app "${app.name}" has a rollout under way`);
  await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.ROLLOUT_STARTED, {
    message: `rolling out v${version}${app.currentReleaseVersion > 0 ? ` over v${app.currentReleaseVersion}` : ""}${
      options.canary ? ` as a canary: ${options.canary.percent} % first, +${options.canary.stepPercent} % every ${options.canary.intervalMs / 1000} s` : ""
    }`,
  });
  return { release, rollout };
}
