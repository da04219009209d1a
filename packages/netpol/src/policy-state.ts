import type { PolicyModel } from "./policy-model.js";

/** One published state of the model: policies compile from it as a whole. */
export interface PolicySnapshot {
  readonly model: PolicyModel;
  /** Grows with every change, across restarts (it is stored). */
  readonly version: bigint;
}

/** What an update writes: the new model and the version the store gave it, plus the caller's answer. */
export interface PolicyUpdate<T> {
  model: PolicyModel;
  version: bigint;
  result: T;
}

/** The current model, changed one update at a time, with listeners for each new version. */
export interface PolicyState {
  current(): PolicySnapshot;
  /**
   * Runs `change` once every earlier update has finished, on the latest
   * model: it checks the request (throwing leaves everything as it was),
   * writes the store and returns the new model, which is then published.
   * Returning undefined means nothing changed.
   */
  update<T>(change: (model: PolicyModel) => Promise<PolicyUpdate<T> | { result: T }>): Promise<T>;
  /** Calls `listener` after each published change; returns the unsubscribe function. */
  subscribe(listener: (snapshot: PolicySnapshot) => void): () => void;
}

/** A state starting from what the store holds. */
export function createPolicyState(initial: PolicySnapshot): PolicyState {
  let snapshot = initial;
  let queue: Promise<unknown> = Promise.resolve();
  const listeners = new Set<(snapshot: PolicySnapshot) => void>();
  return {
    current: () => snapshot,
    update(change) {
      const run = queue.then(async () => {
        const outcome = await change(snapshot.model);
        if ("model" in outcome) {
          snapshot = { model: outcome.model, version: outcome.version };
          for (const listener of listeners) listener(snapshot);
        }
        return outcome.result;
      });
      // A refused update must not block the ones behind it.
      queue = run.catch(() => {});
      return run;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
