import type { Database, Logger } from "@berth/kit";
import { appKey } from "../change-feed.js";
import type { ChangeFeed } from "../change-feed.js";
import type { SchedulerConfig } from "../config.js";
import type { EndpointHub } from "../endpoints.js";
import type { LogSource } from "../engine/engine.js";
import type { AppController } from "../reconcile/app-controller.js";
import type { SourceUploads } from "../source-uploads.js";

/** What the scheduler's handlers work with. */
export interface SchedulerServiceDeps {
  db: Database;
  config: SchedulerConfig;
  controller: AppController;
  endpoints: EndpointHub;
  logs: LogSource;
  feed: ChangeFeed;
  uploads: SourceUploads;
  logger: Logger;
}

/** After a change to an app: its watchers see it and the controller reconciles it. */
export function afterChange(deps: Pick<SchedulerServiceDeps, "feed" | "controller">, app: string): void {
  deps.feed.notify(appKey(app));
  deps.controller.enqueue(app);
}
