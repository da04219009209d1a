import type { Queryable } from "@berth/kit";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { rolloutKey } from "../change-feed.js";
import type { ChangeFeed } from "../change-feed.js";
import { appendRolloutEvent } from "../store/rollouts.js";
import type { RolloutEventFields } from "../store/rollouts.js";

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
