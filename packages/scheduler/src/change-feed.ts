import { randomUUID } from "node:crypto";

/** The change-feed key of an app (formation, releases, existence). */
export const appKey = (app: string) => `app:${app}`;
/** The change-feed key of a rollout (its events and state). */
export const rolloutKey = (id: string) => `rollout:${id}`;

/** Tells in-process watchers that something keyed by a string changed. */
export interface ChangeFeed {
  /** Chosen at random per feed: versions of different feeds (scheduler processes) do not compare. */
  readonly instance: string;
  notify(key: string): void;
  /** How many changes `key` has seen; pass it to `changedSince` to never miss one. */
  version(key: string): number;
  /** Resolves once `key` changed after `version`, or when `signal` aborts. */
  changedSince(key: string, version: number, signal: AbortSignal): Promise<void>;
  /** Calls `listener` with every key that changes, until the returned function is called. */
  subscribe(listener: (key: string) => void): () => void;
}

/** Creates a change feed. */
export function createChangeFeed(): ChangeFeed {
  const versions = new Map<string, number>();
  const waiters = new Map<string, Set<() => void>>();
  const listeners = new Set<(key: string) => void>();
  return {
    instance: randomUUID(),
    notify(key) {
      versions.set(key, (versions.get(key) ?? 0) + 1);
      for (const wake of waiters.get(key) ?? []) wake();
      waiters.delete(key);
      for (const listener of listeners) listener(key);
    },
    version(key) {
      return versions.get(key) ?? 0;
    },
    changedSince(key, version, signal) {
      if ((versions.get(key) ?? 0) !== version || signal.aborted) return Promise.resolve();
      return new Promise((resolve) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          waiters.get(key)?.delete(wake);
          resolve();
        };
        let set = waiters.get(key);
        if (set === undefined) waiters.set(key, (set = new Set()));
        set.add(wake);
        signal.addEventListener("abort", wake);
      });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
