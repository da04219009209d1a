import type { ServiceImpl } from "@connectrpc/connect";
import type { AppService } from "@berth/proto/api/v1/apps";
import { readOwnedApp, requireOwnedApp } from "./app-ownership.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

type CanaryHandlers = Pick<ServiceImpl<typeof AppService>, "getCanary" | "promoteCanary" | "abortCanary">;

/** AppService's canaries: `canary`, `canary:promote` and `canary:abort`. */
export function createCanaryHandlers(deps: ServiceDeps): CanaryHandlers {
  const { scheduler } = deps.peers;

  return {
    async getCanary(request, ctx) {
      const response = await readOwnedApp(deps, ctx, request.app, (options) => scheduler.getCanary({ app: request.app }, options));
      return { rollout: response.rollout };
    },
    async promoteCanary(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app);
      const response = await scheduler.promoteCanary({ app: request.app }, callOptions(deps, ctx));
      return { rollout: response.rollout };
    },
    async abortCanary(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app);
      const response = await scheduler.abortCanary({ app: request.app }, callOptions(deps, ctx));
      return { rollout: response.rollout };
    },
  };
}
