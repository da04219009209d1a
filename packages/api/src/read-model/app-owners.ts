import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { WatchAppsResponse } from "@berth/proto/scheduler/v1/scheduler";
import type { App } from "@berth/proto/type/v1/release";

/**
 * Which team owns each app, as the scheduler's WatchApps stream tells it,
 * so that an ownership check costs no call. It answers only while the stream
 * is live; an app it does not hold is the scheduler's to answer.
 */
export interface AppOwners {
  /** The team owning `app`, or undefined when the directory cannot say (ask the scheduler). */
  teamOf(app: string): string | undefined;
  /** Applies one WatchApps message. */
  apply(message: WatchAppsResponse): void;
  /** The stream is down: nothing is answered until the next snapshot. */
  down(): void;
  /**
   * This API deleted `app`: it is forgotten at once, and news of it (or of
   * an older app of that name) still on its way on the stream is ignored.
   */
  deleted(app: App): void;
}

interface Owner {
  team: string;
  /** Tells an app from an older one of the same name. */
  createdAtMs: number;
}

const createdAtMs = (app: App) => (app.createdAt ? timestampMs(app.createdAt) : 0);

/** Creates an empty directory, answering nothing until a snapshot arrives. */
export function createAppOwners(): AppOwners {
  let live = false;
  const owners = new Map<string, Owner>();
  // Apps this API deleted whose deletion the stream has not shown yet, by the creation time of the deleted app.
  const deletedHere = new Map<string, number>();

  function put(app: App): void {
    const created = createdAtMs(app);
    const deletedApp = deletedHere.get(app.name);
    if (deletedApp !== undefined && created <= deletedApp) return;
    const known = owners.get(app.name);
    if (known && known.createdAtMs > created) return;
    owners.set(app.name, { team: app.team, createdAtMs: created });
  }

  return {
    teamOf(app) {
      return live ? owners.get(app)?.team : undefined;
    },
    apply(message) {
      if (message.snapshot) {
        owners.clear();
        const listed = new Map(message.apps.filter((entry) => entry.app && !entry.deleted).map((entry) => [entry.app!.name, entry.app!]));
        // A snapshot without the app, or with a newer one of its name, was read after the deletion.
        for (const [name, deletedApp] of deletedHere) {
          const app = listed.get(name);
          if (!app || createdAtMs(app) > deletedApp) deletedHere.delete(name);
        }
        for (const app of listed.values()) put(app);
        live = true;
        return;
      }
      for (const entry of message.apps) {
        if (!entry.app) continue;
        if (entry.deleted) {
          owners.delete(entry.app.name);
          deletedHere.delete(entry.app.name);
        } else {
          put(entry.app);
        }
      }
    },
    down() {
      live = false;
      owners.clear();
    },
    deleted(app) {
      owners.delete(app.name);
      deletedHere.set(app.name, Math.max(createdAtMs(app), deletedHere.get(app.name) ?? 0));
    },
  };
}
