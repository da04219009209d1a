import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { createFieldChecks } from "@berth/kit";
import type { AppService } from "@berth/proto/api/v1/apps";
import { requireTeam } from "../auth.js";
import { ownedApp, readOwnedApp } from "./app-ownership.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

type CanaryHandlers = Pick<ServiceImpl<typeof AppService>, "getCanary" | "promoteCanary" | "abortCanary">;

/** AppService's canaries: `canary`, `canary:promote` and `canary:abort`. */
export function createCanaryHandlers(deps: ServiceDeps): CanaryHandlers {
  const { scheduler } = deps.peers;

  async function owned(app: string, ctx: HandlerContext): Promise<void> {
    const team = requireTeam(ctx);
    const checks = createFieldChecks();
    checks.dnsLabel("app", app);
    checks.throwIfAny();
    await ownedApp(deps, ctx, team, app);
  }

  return {
    async getCanary(request, ctx) {
      const response = await readOwnedApp(deps, ctx, request.app, (options) => scheduler.getCanary({ app: request.app }, options));
      return { rollout: response.rollout };
    },
    async promoteCanary(request, ctx) {
      await owned(request.app, ctx);
      const response = await scheduler.promoteCanary({ app: request.app }, callOptions(deps, ctx));
      return { rollout: response.rollout };
    },
    async abortCanary(request, ctx) {
      await owned(request.app, ctx);
      const response = await scheduler.abortCanary({ app: request.app }, callOptions(deps, ctx));
      return { rollout: response.rollout };
    },
  };
}
