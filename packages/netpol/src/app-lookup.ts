import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions, Client } from "@connectrpc/connect";
import { notFound } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { appEntryOf } from "./app-feed.js";
import type { AppEntry, PolicyModel } from "./policy-model.js";

/** NOT_FOUND for an app: the same answer whether it is missing or another team's, so nothing leaks. */
export const appNotFound = (name: string) => notFound(`app "${name}" not found`);

/**
 * Finds an app: in the model, else (an app so new the WatchApps stream has
 * not brought it yet) from the scheduler. undefined when neither knows it.
 */
export type AppLookup = (model: PolicyModel, name: string, options: CallOptions) => Promise<AppEntry | undefined>;

/** An AppLookup asking the scheduler for apps the model lacks. */
export function createAppLookup(scheduler: Pick<Client<typeof SchedulerService>, "getApp">): AppLookup {
  return async (model, name, options) => {
    const known = model.apps.get(name);
    if (known) return known;
    try {
      const { app } = await scheduler.getApp({ name }, options);
      return app ? appEntryOf(app) : undefined;
    } catch (error) {
      if (ConnectError.from(error).code === Code.NotFound) return undefined;
      throw error;
    }
  };
}
