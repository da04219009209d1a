import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { followStream } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { AppProcesses, SchedulerService, WatchAppsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { App } from "@berth/proto/type/v1/release";
import type { AppChanges } from "./model-changes.js";
import type { AppEntry } from "./policy-model.js";

/** An app of the scheduler's in netpol's terms (`processes` as the scheduler listed them). */
export function appEntryOf(app: App, processes: AppProcesses["processes"] = []): AppEntry {
  return {
    name: app.name,
    team: app.team,
    createdAtMs: app.createdAt ? timestampMs(app.createdAt) : 0,
    processes: processes
      .map((process) => ({
        processType: process.processType,
        routingClass: process.routingClass,
        port: process.routingClass === RoutingClass.TCP ? process.internalPort : 0,
      }))
      .sort((a, b) => a.processType.localeCompare(b.processType)),
  };
}

/** One WatchApps message as changes to the model. */
export function appChangesOf(message: WatchAppsResponse): AppChanges {
  const apps: AppEntry[] = [];
  const deleted: string[] = [];
  for (const entry of message.apps) {
    if (!entry.app) continue;
    if (entry.deleted) deleted.push(entry.app.name);
    else apps.push(appEntryOf(entry.app, entry.processes));
  }
  return { apps, deleted, snapshot: message.snapshot };
}

/** Options of startAppFeed. */
export interface AppFeedOptions {
  scheduler: Pick<Client<typeof SchedulerService>, "watchApps">;
  /** Records one message's changes; the stream waits for it, and reconnects if it fails. */
  apply(changes: AppChanges): Promise<void>;
  logger: Logger;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** The running follower of the scheduler's apps. */
export interface AppFeed {
  /** Resolves once the first snapshot is recorded. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Follows the scheduler's WatchApps for as long as netpol runs, reconnecting
 * with backoff (the scheduler sends a fresh snapshot on each connection).
 * While it is down netpol keeps compiling from the apps it has stored.
 */
export function startAppFeed(options: AppFeedOptions): AppFeed {
  const shutdown = new AbortController();
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const following = followStream<WatchAppsResponse>({
    name: "scheduler WatchApps",
    open: (callOptions) => options.scheduler.watchApps({}, callOptions),
    async onMessage(message) {
      const changes = appChangesOf(message);
      await options.apply(changes);
      if (changes.snapshot) markReady();
    },
    onDown() {},
    signal: shutdown.signal,
    logger: options.logger,
    initialBackoffMs: options.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs,
  });
  return {
    ready,
    async close() {
      shutdown.abort();
      await following;
    },
  };
}
