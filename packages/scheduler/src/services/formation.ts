import type { ServiceImpl } from "@connectrpc/connect";
import { failedPrecondition, invalidArgument, notFound } from "@berth/kit";
import type { Queryable } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { applyFormationPatch, validateAutoscaleRule, validateFormationChanges } from "../formation.js";
import { POD_SIZES } from "../pod-sizes.js";
import { recordRolloutEvent } from "../reconcile/rollout-events.js";
import { newRolloutId, requireNoRollout } from "../release-creation.js";
import { deleteAutoscaleRule, listAutoscaleRules, listFormation, saveFormationEntry, upsertAutoscaleRule } from "../store/formation.js";
import { findReplica, listReplicas } from "../store/replicas.js";
import { insertRollout, setProgressDeadline } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import type { AppRecord } from "../store/apps.js";
import { replicaMessage, rolloutMessage } from "../views.js";
import { formationContext, formationOf, requireApp } from "./app-reads.js";
import { afterChange } from "./service-deps.js";
import { requireFields } from "./request-checks.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type FormationHandlers = Pick<
  ServiceImpl<typeof SchedulerService>,
  | "getFormation"
  | "updateFormation"
  | "listPodSizes"
  | "setAutoscale"
  | "listAutoscale"
  | "unsetAutoscale"
  | "listReplicas"
  | "restartProcess"
  | "deleteReplica"
>;

/** The handlers of the formation: scale, size, autoscale, and the replicas that run it. */
export function createFormationHandlers(deps: SchedulerServiceDeps): FormationHandlers {
  const { db, config, controller } = deps;

  // A rollout of some types onto new replicas of the same release; undefined when the app has one under way.
  async function startTypeRollout(tx: Queryable, app: AppRecord, processTypes: string[], message: string): Promise<RolloutRecord | undefined> {
    const created = await insertRollout(tx, {
      id: newRolloutId(),
      app: app.name,
      releaseVersion: app.currentReleaseVersion,
      previousReleaseVersion: app.currentReleaseVersion,
      state: "rolling",
      processTypes,
    });
    if (created === undefined) return undefined;
    await setProgressDeadline(tx, created.id, new Date(Date.now() + config.progressDeadlineMs));
    await recordRolloutEvent(tx, undefined, created.id, RolloutEventKind.ROLLOUT_STARTED, { processType: processTypes.join(","), message });
    return created;
  }
  return {
    async getFormation(request) {
      const app = await requireApp(db, request.app);
      return { processes: await formationOf(db, config, app) };
    },

    async updateFormation(request) {
      const app = await requireApp(db, request.app);
      const patches = validateFormationChanges(request.changes, await formationContext(db, config, app));
      const { processes, rollout } = await db.transaction(async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        const entries = new Map((await listFormation(tx, app.name)).map((entry) => [entry.processType, entry]));
        const resized: string[] = [];
        for (const patch of patches) {
          const entry = entries.get(patch.processType);
          if (entry === undefined) throw failedPrecondition(`"${patch.processType}" has no formation yet`);
          const next = applyFormationPatch(entry, patch);
          if (next.restartGeneration !== entry.restartGeneration && next.replicas > 0) resized.push(patch.processType);
          await saveFormationEntry(tx, app.name, next);
        }
        // Replicas running on the old resources roll onto the new ones, followed like any rollout.
        const started =
          resized.length > 0 && locked.currentReleaseVersion > 0 ? await startTypeRollout(tx, locked, resized, `resizing ${resized.join(", ")}`) : undefined;
        return { processes: await formationOf(tx, config, locked), rollout: started };
      });
      return { processes, rollout: rollout && rolloutMessage(rollout), appVersion: afterChange(deps, app.name) };
    },

    async listPodSizes() {
      return { sizes: [...POD_SIZES] };
    },

    async setAutoscale(request) {
      const app = await requireApp(db, request.app);
      const rule = validateAutoscaleRule(request.rule, await formationContext(db, config, app));
      await db.transaction(async (tx) => {
        await requireApp(tx, app.name, true);
        await upsertAutoscaleRule(tx, app.name, rule);
        const entry = (await listFormation(tx, app.name)).find((candidate) => candidate.processType === rule.processType);
        if (entry !== undefined) {
          const replicas = Math.min(Math.max(entry.replicas, rule.minReplicas), rule.maxReplicas);
          if (replicas !== entry.replicas) await saveFormationEntry(tx, app.name, { ...entry, replicas });
        }
      });
      return { rule, appVersion: afterChange(deps, app.name) };
    },

    async listAutoscale(request) {
      const app = await requireApp(db, request.app);
      return { rules: (await listAutoscaleRules(db, app.name)).map((rule) => ({ ...rule })) };
    },

    async unsetAutoscale(request) {
      requireFields({ ids: { process_type: request.processType } });
      const app = await requireApp(db, request.app);
      if (!(await deleteAutoscaleRule(db, app.name, request.processType))) {
        throw notFound(`"${request.processType}" of app "${app.name}" has no autoscale rule`);
      }
      return { appVersion: afterChange(deps, app.name) };
    },

    async listReplicas(request) {
      requireFields({ optionalIds: { process_type: request.processType } });
      const app = await requireApp(db, request.app);
      const replicas = await listReplicas(db, app.name);
      return { replicas: replicas.filter((replica) => request.processType === "" || replica.processType === request.processType).map(replicaMessage) };
    },

    async restartProcess(request) {
      requireFields({ ids: { process_type: request.processType } });
      const app = await requireApp(db, request.app);
      const context = await formationContext(db, config, app);
      const routingClass = context.types.get(request.processType);
      if (routingClass === undefined || routingClass === RoutingClass.RELEASE) {
        throw invalidArgument("process_type", `app "${app.name}" has no process type "${request.processType}" to restart`);
      }
      if (app.currentReleaseVersion === 0) throw failedPrecondition(`app "${app.name}" has no release running`);
      const rollout = await db.transaction(async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        await requireNoRollout(tx, locked);
        const entry = (await listFormation(tx, app.name)).find((candidate) => candidate.processType === request.processType);
        if (entry === undefined) throw failedPrecondition(`"${request.processType}" has no formation yet`);
        await saveFormationEntry(tx, app.name, { ...entry, restartGeneration: entry.restartGeneration + 1, restartedAt: new Date() });
        const created = await startTypeRollout(tx, locked, [request.processType], `restarting "${request.processType}"`);
        if (created === undefined) throw failedPrecondition(`app "${app.name}" has a rollout under way`);
        return created;
      });
      return { rollout: rolloutMessage(rollout), appVersion: afterChange(deps, app.name) };
    },

    async deleteReplica(request) {
      requireFields({ ids: { replica: request.replica } });
      const app = await requireApp(db, request.app);
      const replica = await findReplica(db, request.replica);
      if (replica === undefined || replica.app !== app.name) throw notFound(`app "${app.name}" has no replica "${request.replica}"`);
      await deps.engine.deleteReplica(app, replica);
      controller.enqueue(app.name);
      return {};
    },
  };
}
