import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { rolloutKey } from "../change-feed.js";
import { decideCanaryStep } from "../canary-analysis.js";
import type { ConvergeOutcome } from "../engine/engine.js";
import { saveCanary } from "../store/canary.js";
import type { CanaryRecord } from "../store/canary.js";
import { setProgressDeadline } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { routersReportedPast, trafficBetween } from "../store/traffic.js";
import { abortCanary, promoteCanary } from "./canary-transitions.js";
import type { ControllerContext } from "./context.js";
import { recordRolloutEvent } from "./rollout-events.js";

// While an interval's figures are awaited, how often the routers' reports are looked at again.
const COUNT_RECHECK_MS = 200;

/** Moves canaries on, one controller pass at a time. */
export interface CanaryController {
  /**
   * After the engine's pass over an app whose rollout is an active canary:
   * starts, raises, promotes or aborts it. Returns when to look again.
   */
  advance(rollout: RolloutRecord, canary: CanaryRecord, outcome: ConvergeOutcome): Promise<number | undefined>;
}

/**
 * Creates the canary controller. Everything it decides is stored with the
 * rollout before it acts, so a restarted scheduler resumes the canary at its
 * share and interval; each move is conditional on the state it saw, so a
 * `canary:promote` or `canary:abort` in between wins cleanly.
 */
export function createCanaryController(ctx: Pick<ControllerContext, "db" | "feed" | "config" | "queue" | "logger">): CanaryController {
  const { db, feed, config, queue, logger } = ctx;

  async function save(rollout: RolloutRecord, from: CanaryRecord, next: CanaryRecord, message: string): Promise<void> {
    const saved = await db.transaction(async (tx) => {
      if (!(await saveCanary(tx, rollout.id, from.state, next))) return false;
      // The share grows by the analysis, not by a deadline: an interval may be longer than any deadline.
      await setProgressDeadline(tx, rollout.id, null);
      await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.CANARY_STEP, { message });
      return true;
    });
    if (saved) feed.notify(rolloutKey(rollout.id));
  }

  return {
    async advance(rollout, canary, outcome) {
      const now = Date.now();
      const version = rollout.releaseVersion;
      if (outcome.state === "stalled") {
        await abortCanary({ db, feed, config }, rollout, canary, {
          byHand: false,
          reason: "CANARY_UNHEALTHY",
          message: outcome.stall?.message ?? "its replicas did not become healthy",
        });
        queue.enqueue(rollout.app);
        return undefined;
      }
      if (canary.state === "starting") {
        if (outcome.canaryReady !== true) return undefined;
        const percent = canary.policy.percent;
        await save(
          rollout,
          canary,
          { ...canary, state: "running", currentPercent: percent, stepStartedAt: now, runningSince: now },
          `v${version} is healthy: ${percent} % of web requests go to it`,
        );
        queue.enqueue(rollout.app);
        return undefined;
      }
      let decision = decideCanaryStep({ canary, releaseVersion: version, now, healthy: outcome.canaryReady === true });
      if (decision.kind === "count") {
        const end = new Date(decision.intervalEnd);
        const complete = now >= decision.intervalEnd + config.trafficSettleMs || (await routersReportedPast(db, end, config.trafficSettleMs));
        if (!complete) return now + COUNT_RECHECK_MS;
        const intervalFigures = await trafficBetween(db, rollout.app, new Date(canary.stepStartedAt), end);
        decision = decideCanaryStep({ canary, releaseVersion: version, now, healthy: true, intervalFigures });
      }
      switch (decision.kind) {
        case "hold":
          return decision.until;
        case "count":
          return now + COUNT_RECHECK_MS;
        case "raise":
          await save(
            rollout,
            canary,
            { ...canary, currentPercent: decision.percent, stepStartedAt: now },
            `${decision.summary}: ${decision.percent} % of web requests go to v${version}`,
          );
          break;
        case "promote":
          await promoteCanary({ db, feed, config }, rollout, canary, {
            byHand: false,
            reason: "PROMOTED",
            message: `${decision.summary}: promoted, v${version} takes every request`,
          });
          break;
        case "abort":
          logger.warn("canary aborted", { app: rollout.app, rollout: rollout.id, reason: decision.reason, message: decision.message });
          await abortCanary({ db, feed, config }, rollout, canary, { byHand: false, reason: decision.reason, message: decision.message });
          break;
      }
      queue.enqueue(rollout.app);
      return undefined;
    },
  };
}
