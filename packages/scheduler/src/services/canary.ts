import type { ServiceImpl } from "@connectrpc/connect";
import { failedPrecondition, notFound } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { abortCanary, promoteCanary } from "../reconcile/canary-transitions.js";
import type { CanaryEnding } from "../reconcile/canary-transitions.js";
import { canaryActive, findLatestCanaryRollout } from "../store/canary.js";
import { findActiveRollout, findRollout } from "../store/rollouts.js";
import { rolloutMessage } from "../views.js";
import { requireApp } from "./app-reads.js";
import { afterChange } from "./service-deps.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type CanaryHandlers = Pick<ServiceImpl<typeof SchedulerService>, "getCanary" | "promoteCanary" | "abortCanary">;

/** The handlers of canaries: show one, and promote or abort it by hand (the controller carries the move out). */
export function createCanaryHandlers(deps: SchedulerServiceDeps): CanaryHandlers {
  const { db, feed, config, traffic } = deps;

  /** Moves the app's canary under way on by hand, and answers its rollout as it then stands. */
  async function byHand(appName: string, move: typeof promoteCanary, ending: Omit<CanaryEnding, "byHand">) {
    const app = await requireApp(db, appName);
    const rollout = await findActiveRollout(db, app.name);
    const canary = rollout?.canary;
    if (rollout === undefined || rollout.state !== "rolling" || !canaryActive(canary)) {
      throw failedPrecondition(`app "${app.name}" has no canary under way${rollout ? ` (its rollout ${rollout.id} is not one, or is past its canary)` : ""}`);
    }
    if (!(await move({ db, feed, config }, rollout, canary, { ...ending, byHand: true }))) {
      throw failedPrecondition(`app "${app.name}"'s canary moved on meanwhile; see \`canary\``);
    }
    afterChange(deps, app.name);
    const now = (await findRollout(db, rollout.id))!;
    return { rollout: rolloutMessage(now, await traffic.figures(now)) };
  }

  return {
    async getCanary(request) {
      const app = await requireApp(db, request.app);
      const id = await findLatestCanaryRollout(db, app.name);
      const rollout = id === undefined ? undefined : await findRollout(db, id);
      if (rollout === undefined) throw notFound(`app "${app.name}" has had no canary`);
      return { rollout: rolloutMessage(rollout, await traffic.figures(rollout)) };
    },

    promoteCanary(request) {
      return byHand(request.app, promoteCanary, { reason: "PROMOTED_BY_HAND", message: "promoted by hand (canary:promote)" });
    },

    abortCanary(request) {
      return byHand(request.app, abortCanary, { reason: "ABORTED_BY_HAND", message: "aborted by hand (canary:abort)" });
    },
  };
}
