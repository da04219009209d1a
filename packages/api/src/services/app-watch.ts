import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AppChangeSchema, AppService } from "@berth/proto/api/v1/apps";
import { requireTeam } from "../auth.js";
import { streamCall } from "../peers.js";
import { joinedFormation } from "./formation.js";
import type { ServiceDeps } from "./service-deps.js";

type WatchHandlers = Pick<ServiceImpl<typeof AppService>, "watchApps">;

/**
 * AppService.WatchApps: the scheduler's stream of app changes, narrowed to
 * the caller's team. A deletion carries only the app's name, so the apps this
 * stream has shown the caller are remembered: another team's deleted app is
 * never mentioned, exactly as its creation was not.
 */
export function createAppWatch(deps: ServiceDeps): WatchHandlers {
  return {
    async *watchApps(_request, ctx) {
      const team = requireTeam(ctx);
      const shown = new Set<string>();
      for await (const message of deps.peers.scheduler.watchApps({}, streamCall(ctx))) {
        if (message.snapshot) shown.clear();
        const apps: MessageInitShape<typeof AppChangeSchema>[] = [];
        for (const change of message.apps) {
          const name = change.app?.name ?? "";
          if (change.deleted) {
            if (shown.delete(name)) apps.push({ app: { name }, deleted: true });
          } else if (change.app?.team === team) {
            shown.add(name);
            apps.push({ app: change.app, processes: await joinedFormation(deps, ctx, name, change.processes) });
          }
        }
        if (message.snapshot || apps.length > 0) yield { snapshot: message.snapshot, apps };
      }
    },
  };
}
