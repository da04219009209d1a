import type { Client } from "@connectrpc/connect";
import { followStream, routingClassOf } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { AppProcesses, SchedulerService, WatchAppsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { AllocationStore, Pools } from "./store/allocation-store.js";

/** Options of followSchedulerApps. */
export interface AppFeedOptions {
  scheduler: Pick<Client<typeof SchedulerService>, "watchApps">;
  store: AllocationStore;
  pools: Pools;
  announceChange(app: string): Promise<void>;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * Keeps allocations level with the scheduler's apps: every `*-rtc` process of
 * an app's active release has one (its replica count following the
 * formation), and an allocation whose process left the Procfile, or whose app
 * was deleted, is released, which stops its gateway and forgets its secrets.
 * A snapshot (sent on every reconnection) repairs whatever was missed.
 */
export function followSchedulerApps(options: AppFeedOptions): Promise<void> {
  const { store, logger } = options;

  /** Ensures the app's rtc processes; true when one got a new allocation. */
  async function levelApp(entry: AppProcesses, wanted: Set<string>): Promise<boolean> {
    const app = entry.app!;
    let created = false;
    if (entry.deleted) return created;
    for (const process of entry.processes) {
      if (routingClassOf(process.processType) !== RoutingClass.RTC) continue;
      wanted.add(`${app.name}/${process.processType}`);
      try {
        const ensured = await store.ensure({ team: app.team, app: app.name, processType: process.processType, replicas: process.replicas }, options.pools);
        created ||= ensured.created;
      } catch (error) {
        // An exhausted pool is reported on the deploy's own EnsureAllocation; the feed goes on.
        logger.warn("could not allocate for an rtc process", { app: app.name, processType: process.processType, error });
      }
    }
    return created;
  }

  async function apply(message: WatchAppsResponse): Promise<void> {
    const wanted = new Set<string>();
    const touched = new Set<string>();
    const changed = new Set<string>();
    for (const entry of message.apps) {
      if (!entry.app) continue;
      touched.add(entry.app.name);
      if (await levelApp(entry, wanted)) changed.add(entry.app.name);
    }
    const existing = await store.list();
    for (const allocation of existing) {
      const covered = message.snapshot || touched.has(allocation.app);
      if (!covered || wanted.has(`${allocation.app}/${allocation.processType}`)) continue;
      await store.release(allocation.app, allocation.processType);
      logger.info("released the TURN allocation of a process that is gone", { app: allocation.app, processType: allocation.processType });
      changed.add(allocation.app);
    }
    for (const app of changed) await options.announceChange(app);
  }

  return followStream<WatchAppsResponse>({
    name: "scheduler WatchApps",
    open: (callOptions) => options.scheduler.watchApps({}, callOptions),
    onMessage: apply,
    onDown() {},
    signal: options.signal,
    logger,
  });
}
