import type { Coordination, Database, Logger } from "@berth/kit";
import type { ChangeFeed } from "../change-feed.js";
import type { SchedulerConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import type { WorkQueue } from "./work-queue.js";
import type { DiskRetention } from "../disk-retention.js";

/** What the controller is built from. */
export interface ControllerDeps {
  db: Database;
  engine: Engine;
  coordination: Coordination;
  feed: ChangeFeed;
  config: SchedulerConfig;
  logger: Logger;
  /** Unique to this process, for leases. */
  instanceId: string;
  /** Bounds the files of apps: pruned after each rollout, removed with the app. */
  retention?: DiskRetention;
}

/** What the controller's parts share: its dependencies and its work queue. */
export interface ControllerContext extends ControllerDeps {
  queue: WorkQueue;
}
