import type { AllocationRow, AllocationStore } from "./store/allocation-store.js";

/** Allocations as minting reads them: from memory, refreshed every few seconds. */
export interface MintingTargets {
  get(app: string, processType: string): Promise<AllocationRow | undefined>;
  /** Drops what is kept of an app, after it changed here or on another instance. */
  forget(app: string): void;
  /** Drops everything, when changes may have been missed. */
  forgetAll(): void;
}

/**
 * Minting must cost next to nothing beside the RPC, so it does not read the
 * database on every call. A stale entry is harmless for up to `maxAgeMs`,
 * which stays well below the rotation grace period: credentials signed with
 * the secret before a rotation are accepted by the gateway until grace ends.
 * Changes announced by any instance drop the entry at once.
 */
export function createMintingTargets(store: Pick<AllocationStore, "get">, maxAgeMs: number, now: () => number = Date.now): MintingTargets {
  const entries = new Map<string, { row: AllocationRow | undefined; readAt: number }>();
  const key = (app: string, processType: string) => `${app}/${processType}`;
  return {
    async get(app, processType) {
      const cached = entries.get(key(app, processType));
      if (cached && now() - cached.readAt < maxAgeMs) return cached.row;
      const readAt = now();
      const row = await store.get(app, processType);
      entries.set(key(app, processType), { row, readAt });
      return row;
    },
    forget(app) {
      for (const entry of entries.keys()) if (entry.startsWith(`${app}/`)) entries.delete(entry);
    },
    forgetAll() {
      entries.clear();
    },
  };
}
