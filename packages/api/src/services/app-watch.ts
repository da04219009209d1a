import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AppChangeSchema, AppService } from "@berth/proto/api/v1/apps";
import type { AppProcesses, WatchAppsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { requireTeam } from "../auth.js";
import { streamCall } from "../peers.js";
import { joinedFormation } from "./formation.js";
import type { ServiceDeps } from "./service-deps.js";

type WatchHandlers = Pick<ServiceImpl<typeof AppService>, "watchApps">;

/**
 * AppService.WatchApps: the scheduler's stream of app changes, narrowed to
 * the caller's team and joined with routes and gateways as GetFormation
 * joins them. A deletion carries only the app's name, so the apps this
 * stream has shown the caller are remembered: another team's deleted app is
 * never mentioned, exactly as its creation was not. A route comes after the
 * replicas it leads to are ready, so a change of an app's routes (from the
 * router's stream) sends the app again with its URLs.
 */
export function createAppWatch(deps: ServiceDeps): WatchHandlers {
  return {
    async *watchApps(_request, ctx) {
      const team = requireTeam(ctx);
      // The last processes shown of each app, to send again when only its routes changed.
      const shown = new Map<string, AppProcesses>();
      const routesChanged = new Set<string>();
      let wake: (() => void) | undefined;
      const stopListening = deps.readModel.routes.onChange((apps) => {
        for (const app of apps === "all" ? shown.keys() : apps) if (shown.has(app)) routesChanged.add(app);
        if (routesChanged.size > 0) wake?.();
      });
      const upstream = deps.peers.scheduler.watchApps({}, streamCall(ctx))[Symbol.asyncIterator]();
      try {
        let next = upstream.next();
        for (;;) {
          const woken = new Promise<"routes">((resolve) => {
            wake = () => resolve("routes");
          });
          const step = routesChanged.size > 0 ? "routes" : await Promise.race([next, woken]);
          if (step === "routes") {
            const apps = [...routesChanged].flatMap((name) => (shown.has(name) ? [shown.get(name)!] : []));
            routesChanged.clear();
            if (apps.length > 0) yield { snapshot: false, apps: await Promise.all(apps.map((change) => joined(change))) };
            continue;
          }
          if (step.done) return;
          next = upstream.next();
          const message = step.value as WatchAppsResponse;
          if (message.snapshot) shown.clear();
          const apps: MessageInitShape<typeof AppChangeSchema>[] = [];
          for (const change of message.apps) {
            const name = change.app?.name ?? "";
            if (change.deleted) {
              if (shown.delete(name)) apps.push({ app: { name }, deleted: true });
            } else if (change.app?.team === team) {
              shown.set(name, change);
              routesChanged.delete(name);
              apps.push(await joined(change));
            }
          }
          if (message.snapshot || apps.length > 0) yield { snapshot: message.snapshot, apps };
        }
      } finally {
        stopListening();
        await upstream.return?.();
      }

      async function joined(change: AppProcesses): Promise<MessageInitShape<typeof AppChangeSchema>> {
        return { app: change.app, processes: await joinedFormation(deps, ctx, change.app!.name, change.processes) };
      }
    },
  };
}
