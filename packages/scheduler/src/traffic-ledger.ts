import type { Database, Logger } from "@berth/kit";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { appKey, rolloutKey } from "./change-feed.js";
import type { ChangeFeed } from "./change-feed.js";
import { recordRolloutEvent } from "./reconcile/rollout-events.js";
import { canaryTraffic, setCanaryTraffic, uncountedCanaries } from "./store/canary.js";
import type { RolloutRecord } from "./store/rollouts.js";
import { insertTrafficReport, pruneTrafficReports, setRolloutTraffic, settledRollouts, trafficBetween } from "./store/traffic.js";
import type { TrafficRecord, TrafficReport } from "./store/traffic.js";
import { trafficSummary } from "./traffic-figures.js";

/** Options of createTrafficLedger. */
export interface TrafficLedgerOptions {
  db: Database;
  feed: ChangeFeed;
  logger: Logger;
  /**
   * A router that has not reported for this long is not waited for, and a
   * rollout's figures are made final at the latest this long after its end.
   */
  settleTimeoutMs: number;
  /** Reports older than this are forgotten. */
  retentionMs: number;
}

/** The routers' traffic reports and the figures of every rollout. */
export interface TrafficLedger {
  /** Stores a router's report, then makes final the figures it completes. */
  record(report: TrafficReport): Promise<void>;
  /** Makes final the figures of finished rollouts, and of ended canaries, every live router has reported past. */
  settle(): Promise<void>;
  /**
   * A rollout's figures: final once counted, otherwise what the reports hold
   * so far; undefined for a rollout from before the routers counted.
   */
  figures(rollout: RolloutRecord): Promise<TrafficRecord | undefined>;
  close(): void;
}

/** Creates the ledger; a slow timer settles rollouts whose routers went quiet. */
export function createTrafficLedger(options: TrafficLedgerOptions): TrafficLedger {
  const { db, feed, logger } = options;
  let running: Promise<void> | undefined;
  let again = false;

  async function settleOnce(): Promise<void> {
    // Canaries first: a canary ends before its rollout, so a rollout counted shows its canary counted.
    for (const ended of await uncountedCanaries(db, options.settleTimeoutMs, options.settleTimeoutMs)) {
      if (!ended.reported && !ended.timedOut) continue;
      const { canary } = ended;
      const figures = await canaryTraffic(db, ended.app, canary.runningSince, canary.endedAt);
      if (await setCanaryTraffic(db, ended.id, figures, ended.reported ? "complete" : "partial")) {
        feed.notify(rolloutKey(ended.id));
        feed.notify(appKey(ended.app));
      }
    }
    for (const rollout of await settledRollouts(db, options.settleTimeoutMs, options.settleTimeoutMs)) {
      const figures = await trafficBetween(db, rollout.app, rollout.startedAt, rollout.finishedAt);
      const counted = await db.transaction(async (tx) => {
        if (!(await setRolloutTraffic(tx, rollout.id, figures))) return false;
        await recordRolloutEvent(tx, undefined, rollout.id, RolloutEventKind.TRAFFIC_COUNTED, { message: trafficSummary(figures) });
        return true;
      });
      if (counted) feed.notify(rolloutKey(rollout.id));
    }
  }

  // One pass at a time per scheduler; a request for another during a pass runs once after it.
  function settle(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await settleOnce();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  const timer = setInterval(() => {
    settle().catch((error: unknown) => logger.warn("could not settle rollout traffic", { error }));
    pruneTrafficReports(db, new Date(Date.now() - options.retentionMs)).catch((error: unknown) => logger.warn("could not prune traffic reports", { error }));
  }, options.settleTimeoutMs);
  timer.unref();

  return {
    async record(report) {
      await insertTrafficReport(db, report);
      await settle();
    },

    settle,

    async figures(rollout) {
      if (rollout.trafficCounted) return rollout.traffic === null ? undefined : { complete: true, byRelease: rollout.traffic };
      return { complete: false, byRelease: await trafficBetween(db, rollout.app, rollout.startedAt, rollout.finishedAt ?? new Date()) };
    },

    close() {
      clearInterval(timer);
    },
  };
}
