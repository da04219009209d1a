import type { MintingPolicy, MintingTarget } from "@berth/kit";
import type { WatchMintingTargetsResponse } from "@berth/proto/turn/v1/turn";

/** What the API mints an rtc process's credentials from. */
export interface LocalMinting {
  target: MintingTarget;
  policy: MintingPolicy;
}

/**
 * The gateway and current secret of every rtc process, as the TURN
 * allocator's WatchMintingTargets tells them, so that the API mints
 * credentials itself: one hop instead of two. It answers only while the
 * stream is live; a process it does not hold is the allocator's to mint for
 * (a process allocated a moment ago, or an app this API just changed).
 * The secrets stay in memory: nothing here logs or exposes them.
 */
export interface MintingTargets {
  /** What to mint `app`'s `processType` from, or undefined: ask the allocator. */
  get(app: string, processType: string): LocalMinting | undefined;
  /** Applies one WatchMintingTargets message. */
  apply(message: WatchMintingTargetsResponse): void;
  /** The stream is down: nothing is answered until the next snapshot. */
  down(): void;
  /**
   * This API changed `app`'s allocations (a rotation): its processes are the
   * allocator's to mint for until the stream shows a change of the app, or
   * `STALE_MS` passed (the stream may have shown it before this call).
   */
  changed(app: string): void;
}

/** How long a change this API made leaves an app to the allocator at most. */
export const STALE_MS = 5_000;

/** Creates an empty set, answering nothing until a snapshot arrives. */
export function createMintingTargets(now: () => number = Date.now): MintingTargets {
  let live = false;
  let policy: MintingPolicy | undefined;
  // App -> process type -> target.
  let apps = new Map<string, Map<string, MintingTarget>>();
  // App -> until when it is the allocator's to mint for.
  const stale = new Map<string, number>();

  const grouped = (message: WatchMintingTargetsResponse) => {
    const byApp = new Map<string, Map<string, MintingTarget>>();
    for (const { app, processType, turnHostname, port, secret, tls } of message.targets) {
      let processes = byApp.get(app);
      if (processes === undefined) byApp.set(app, (processes = new Map()));
      processes.set(processType, { turnHostname, port, secret, tls });
    }
    return byApp;
  };

  return {
    get(app, processType) {
      if (!live || policy === undefined || (stale.get(app) ?? 0) > now()) return undefined;
      const target = apps.get(app)?.get(processType);
      return target && { target, policy };
    },
    apply(message) {
      if (message.policy) policy = { ...message.policy };
      const byApp = grouped(message);
      if (message.snapshot) {
        apps = byApp;
        stale.clear();
        live = true;
        return;
      }
      for (const app of message.apps) {
        const processes = byApp.get(app);
        if (processes === undefined) apps.delete(app);
        else apps.set(app, processes);
        stale.delete(app);
      }
    },
    down() {
      live = false;
      apps = new Map();
    },
    changed(app) {
      stale.set(app, now() + STALE_MS);
    },
  };
}
