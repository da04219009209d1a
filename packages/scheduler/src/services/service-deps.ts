import { create } from "@bufbuild/protobuf";
import { AppVersionSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { AppVersion } from "@berth/proto/scheduler/v1/scheduler";
import type { Database, Logger } from "@berth/kit";
import { appKey } from "../change-feed.js";
import type { ChangeFeed } from "../change-feed.js";
import type { SchedulerConfig } from "../config.js";
import type { EndpointHub } from "../endpoints.js";
import type { Engine } from "../engine/engine.js";
import type { AppController } from "../reconcile/app-controller.js";
import type { SourceUploads } from "../source-uploads.js";
import type { TrafficLedger } from "../traffic-ledger.js";

/** What the scheduler's handlers work with. */
export interface SchedulerServiceDeps {
  db: Database;
  config: SchedulerConfig;
  controller: AppController;
  endpoints: EndpointHub;
  /** What handlers ask of the engine directly: logs, taking a replica away, and running commands (`run`, `ps:exec`). */
  engine: Pick<Engine, "logs" | "deleteReplica" | "commands">;
  feed: ChangeFeed;
  uploads: SourceUploads;
  traffic: TrafficLedger;
  logger: Logger;
}

/** The version of `app` as this scheduler sees it now: it holds every change notified so far. */
export function appVersion(feed: ChangeFeed, app: string): AppVersion {
  return create(AppVersionSchema, { instance: feed.instance, generation: BigInt(feed.version(appKey(app))) });
}

/** After a change to an app: its watchers see it and the controller reconciles it; answers the version that holds the change. */
export function afterChange(deps: Pick<SchedulerServiceDeps, "feed" | "controller">, app: string): AppVersion {
  deps.feed.notify(appKey(app));
  deps.controller.enqueue(app);
  return appVersion(deps.feed, app);
}
