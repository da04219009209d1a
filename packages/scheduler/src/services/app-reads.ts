import { create } from "@bufbuild/protobuf";
import type { Queryable } from "@berth/kit";
import { notFound, routingClassOf } from "@berth/kit";
import { AppProcessesSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { AppProcesses, AppVersion } from "@berth/proto/scheduler/v1/scheduler";
import type { SchedulerConfig } from "../config.js";
import type { FormationContext } from "../formation.js";
import { findApp } from "../store/apps.js";
import type { AppRecord } from "../store/apps.js";
import { listAutoscaleRules, listFormation } from "../store/formation.js";
import { findRelease } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { listReplicas } from "../store/replicas.js";
import { findActiveRollout } from "../store/rollouts.js";
import { appMessage, formationView } from "../views.js";
import { DEFAULT_PROCESSES } from "../release-commands.js";
import { requireName } from "./request-checks.js";

/** The app named `name`: INVALID_ARGUMENT for a bad name, NOT_FOUND when there is none. */
export async function requireApp(q: Queryable, name: string, forUpdate = false): Promise<AppRecord> {
  requireName("app", name);
  const app = await findApp(q, name, forUpdate);
  if (app === undefined) throw notFound(`app "${name}" not found`);
  return app;
}

/** The release whose processes an app has now: the one rolling out, else the one serving. */
async function activeRelease(q: Queryable, app: AppRecord): Promise<ReleaseRecord | undefined> {
  const rollout = await findActiveRollout(q, app.name);
  const version = rollout !== undefined && rollout.processTypes.length === 0 ? rollout.releaseVersion : app.currentReleaseVersion;
  return version > 0 ? findRelease(q, app.name, version) : undefined;
}

/** Every process type of an app with its formation, autoscale rule and replicas. */
export async function formationOf(q: Queryable, config: SchedulerConfig, app: AppRecord) {
  const release = await activeRelease(q, app);
  return formationView({
    app: app.name,
    processes: release?.processes ?? DEFAULT_PROCESSES,
    formation: await listFormation(q, app.name),
    rules: await listAutoscaleRules(q, app.name),
    replicas: await listReplicas(q, app.name),
    healthDefaults: config.health,
  });
}

/** What a formation change is checked against: the app's process types and autoscale rules. */
export async function formationContext(q: Queryable, config: SchedulerConfig, app: AppRecord): Promise<FormationContext> {
  const release = await activeRelease(q, app);
  const processes = release?.processes ?? DEFAULT_PROCESSES;
  const rules = await listAutoscaleRules(q, app.name);
  return {
    types: new Map(processes.map((process) => [process.processType, routingClassOf(process.processType)])),
    rules: new Map(rules.map((rule) => [rule.processType, { ...rule, $typeName: "berth.type.v1.AutoscaleRule" as const }])),
    maxReplicas: config.maxReplicasPerType,
  };
}

/**
 * An app and its processes as WatchApps sends them; `deleted` once it is
 * gone. `version` must be taken before the read, so that what is read holds
 * every change up to it.
 */
export async function appProcesses(q: Queryable, config: SchedulerConfig, name: string, version: AppVersion): Promise<AppProcesses> {
  const app = await findApp(q, name);
  if (app === undefined) return create(AppProcessesSchema, { app: { name }, deleted: true, version });
  const rollout = await findActiveRollout(q, name);
  return create(AppProcessesSchema, { app: appMessage(app, rollout?.id ?? ""), processes: await formationOf(q, config, app), version });
}
