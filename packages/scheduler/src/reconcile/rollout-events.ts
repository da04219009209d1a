import type { Queryable } from "@berth/kit";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { ChangeFeed } from "../change-feed.js";
import { appendRolloutEvent } from "../store/rollouts.js";
import type { RolloutEventRecord } from "../store/rollouts.js";
import { rolloutKey } from "./context.js";

/** The optional details of a rollout step. */
export type RolloutEventFields = Partial<Pick<RolloutEventRecord, "processType" | "replica" | "message" | "reason" | "logTail">>;

/**
 * Appends a step to a rollout and wakes its watchers. With `q` inside a
 * transaction, watchers are woken by `feed.notify` once it has committed.
 */
export async function recordRolloutEvent(
  q: Queryable,
  feed: ChangeFeed | undefined,
  rolloutId: string,
  kind: RolloutEventKind,
  fields: RolloutEventFields = {},
): Promise<void> {
  await appendRolloutEvent(q, { rolloutId, kind: RolloutEventKind[kind], ...fields });
  feed?.notify(rolloutKey(rolloutId));
}
