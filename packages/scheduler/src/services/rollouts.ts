import type { ServiceImpl } from "@connectrpc/connect";
import { notFound } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { rolloutKey } from "../change-feed.js";
import { findRollout, listRolloutEvents, listRollouts } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { rolloutEventMessage, rolloutMessage } from "../views.js";
import { requireApp } from "./app-reads.js";
import { requireFields } from "./request-checks.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type RolloutHandlers = Pick<ServiceImpl<typeof SchedulerService>, "getRollout" | "listRollouts" | "watchRollout">;

/** The handlers of rollouts: read them, and follow one step by step. */
export function createRolloutHandlers(deps: SchedulerServiceDeps): RolloutHandlers {
  const { db, feed, traffic } = deps;
  const view = async (rollout: RolloutRecord) => rolloutMessage(rollout, await traffic.figures(rollout));
  return {
    async getRollout(request) {
      requireFields({ ids: { rollout_id: request.rolloutId } });
      const app = await requireApp(db, request.app);
      const rollout = await findRollout(db, request.rolloutId);
      if (rollout === undefined || rollout.app !== app.name) throw notFound(`app "${app.name}" has no rollout "${request.rolloutId}"`);
      return { rollout: await view(rollout) };
    },

    async listRollouts(request) {
      const app = await requireApp(db, request.app);
      const limit = request.limit === 0 ? 20 : Math.min(request.limit, 1000);
      return { rollouts: await Promise.all((await listRollouts(db, app.name, limit)).map(view)) };
    },

    async *watchRollout(request, ctx) {
      requireFields({ ids: { rollout_id: request.rolloutId } });
      const app = await requireApp(db, request.app);
      let sequence = Number(request.fromSequence);
      const key = rolloutKey(request.rolloutId);
      for (;;) {
        const version = feed.version(key);
        const events = await listRolloutEvents(db, request.rolloutId, sequence);
        // Read after the events, so that the state sent with the last step is never older than it.
        const rollout = await findRollout(db, request.rolloutId);
        if (rollout === undefined || rollout.app !== app.name) throw notFound(`app "${app.name}" has no rollout "${request.rolloutId}"`);
        const message = events.length > 0 ? await view(rollout) : undefined;
        for (const event of events) {
          sequence = event.sequence;
          yield { event: rolloutEventMessage(event, rollout), rollout: message };
        }
        if (sequence < rollout.lastSequence) continue;
        // After the end, the stream waits for the final figures (the TRAFFIC_COUNTED step).
        if (rollout.finishedAt !== null && rollout.trafficCounted) return;
        if (rollout.finishedAt !== null) await traffic.settle();
        await feed.changedSince(key, version, ctx.signal);
        if (ctx.signal.aborted) return;
      }
    },
  };
}
