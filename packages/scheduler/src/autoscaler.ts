import type { Database, Logger } from "@berth/kit";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { recommendReplicas, stabilisedReplicas } from "./autoscale-decision.js";
import type { Recommendation } from "./autoscale-decision.js";
import type { AutoscaleConfig } from "./config.js";
import type { ReplicaSupervisor } from "./engine/local/replica-supervisor.js";
import { effectiveResources } from "./formation.js";
import type { AppController } from "./reconcile/app-controller.js";
import { appKey } from "./change-feed.js";
import type { ChangeFeed } from "./change-feed.js";
import { recordRolloutEvent } from "./reconcile/rollout-events.js";
import { newRolloutId } from "./release-creation.js";
import { findApp } from "./store/apps.js";
import { listAllAutoscaleRules, listFormation, recordAutoscale } from "./store/formation.js";
import type { AutoscaleRuleRecord } from "./store/formation.js";
import { listReplicas } from "./store/replicas.js";
import { findActiveRollout, insertRollout } from "./store/rollouts.js";

/** The local engine's autoscaler. */
export interface Autoscaler {
  close(): Promise<void>;
}

/**
 * Starts the local autoscaler: every sample interval it reads the CPU use of
 * each ready replica of every autoscaled type from the engine (/proc),
 * compares its average with the target share of the pod size's CPU, and
 * moves the type's replicas between min and max through the stabilisation
 * windows. A decision is stored in the formation (last_autoscale) and shows
 * in the progress stream: as a step of the rollout under way, or as a
 * rollout of its own that records the scaling.
 */
export function startAutoscaler(options: {
  db: Database;
  /** Samples the CPU use of local replicas. */
  supervisor: Pick<ReplicaSupervisor, "sampleCpuMillis">;
  controller: AppController;
  feed: ChangeFeed;
  config: AutoscaleConfig;
  logger: Logger;
}): Autoscaler {
  const { db, supervisor, feed, config, logger } = options;
  const histories = new Map<string, { sinceMs: number; recommendations: Recommendation[] }>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();

  async function decide(rule: AutoscaleRuleRecord & { app: string }): Promise<void> {
    const key = `${rule.app}/${rule.processType}`;
    const app = await findApp(db, rule.app);
    const entry = (await listFormation(db, rule.app)).find((candidate) => candidate.processType === rule.processType);
    if (app === undefined || app.deleting || entry === undefined) return;
    const ready = (await listReplicas(db, rule.app)).filter(
      (replica) => replica.processType === rule.processType && replica.ready && replica.retirePhase === "",
    );
    const samples = (await Promise.all(ready.map((replica) => supervisor.sampleCpuMillis(replica.name)))).filter(
      (sample): sample is number => sample !== undefined,
    );
    if (samples.length === 0) return;
    const observedCpuPercent = Math.round((samples.reduce((sum, sample) => sum + sample, 0) / samples.length / effectiveResources(entry).cpuMillis) * 100);
    const now = Date.now();
    const history = histories.get(key) ?? { sinceMs: now, recommendations: [] };
    history.recommendations = history.recommendations.filter((item) => item.atMs >= now - Math.max(config.scaleUpWindowMs, config.scaleDownWindowMs));
    history.recommendations.push({ atMs: now, replicas: recommendReplicas({ ...rule, currentReplicas: entry.replicas, observedCpuPercent }) });
    histories.set(key, history);
    const target = stabilisedReplicas(history.recommendations, entry.replicas, now, config, history.sinceMs);
    if (target === undefined) return;
    const reason = `cpu ${observedCpuPercent}% of ${entry.size} against a target of ${rule.targetCpuPercent}%`;
    const decision = { time: new Date(now).toISOString(), fromReplicas: entry.replicas, toReplicas: target, observedCpuPercent, reason };
    const message = `autoscaled ${rule.processType} from ${entry.replicas} to ${target} replicas: ${reason}`;
    await db.transaction(async (tx) => {
      await recordAutoscale(tx, rule.app, rule.processType, decision);
      let rollout = await findActiveRollout(tx, rule.app);
      rollout ??= await insertRollout(tx, {
        id: newRolloutId(),
        app: rule.app,
        releaseVersion: app.currentReleaseVersion,
        previousReleaseVersion: app.currentReleaseVersion,
        state: "succeeded",
        processTypes: [rule.processType],
        finished: true,
        message,
      });
      if (rollout !== undefined) await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.AUTOSCALED, { processType: rule.processType, message });
    });
    histories.delete(key);
    logger.info("autoscaled", { app: rule.app, processType: rule.processType, from: decision.fromReplicas, to: target, observedCpuPercent });
    feed.notify(appKey(rule.app));
    options.controller.enqueue(rule.app);
  }

  async function round(): Promise<void> {
    const rules = await listAllAutoscaleRules(db);
    const active = new Set(rules.map((rule) => `${rule.app}/${rule.processType}`));
    for (const key of histories.keys()) if (!active.has(key)) histories.delete(key);
    for (const rule of rules) {
      try {
        await decide(rule);
      } catch (error) {
        logger.error("autoscaling failed", { app: rule.app, processType: rule.processType, error });
      }
    }
  }

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round()
        .catch((error: unknown) => logger.error("autoscaler round failed", { error }))
        .finally(schedule);
    }, config.sampleIntervalMs);
  };
  let timer: NodeJS.Timeout | undefined;
  schedule();
  return {
    async close() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
