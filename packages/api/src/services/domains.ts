import type { ServiceImpl } from "@connectrpc/connect";
import { routingClassOf } from "@berth/kit";
import type { DomainService } from "@berth/proto/api/v1/network";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { requireTeam } from "../auth.js";
import { createFieldChecks } from "@berth/kit";
import { ownedApp, readOwnedApp, requireOwnedApp } from "./app-ownership.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

/** DomainService: custom domains of web processes, through the router. */
export function createDomainService(deps: ServiceDeps): ServiceImpl<typeof DomainService> {
  const { router } = deps.peers;
  return {
    async addDomain(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      checks.dnsLabel("process_type", request.processType);
      if (request.processType !== "" && routingClassOf(request.processType) !== RoutingClass.WEB) {
        checks.add("process_type", `"${request.processType}" is not a web process: only web and *-web processes take domains`);
      }
      checks.hostname("hostname", request.hostname);
      checks.throwIfAny();
      const [, processes] = await Promise.all([ownedApp(deps, ctx, team, request.app), deps.formations.read(request.app, ctx)]);
      if (!processes.some((process) => process.processType === request.processType)) {
        checks.add("process_type", `the app has no process type "${request.processType}"`);
      }
      checks.throwIfAny();
      const response = await router.addDomain({ app: request.app, processType: request.processType, hostname: request.hostname }, callOptions(deps, ctx));
      deps.readModel.routes.wrote(request.app, response.routesVersion);
      return { route: response.route };
    },
    async listDomains(request, ctx) {
      const response = await readOwnedApp(deps, ctx, request.app, (options) => router.listRoutes({ app: request.app }, options));
      return { routes: response.routes };
    },
    async removeDomain(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.hostname("hostname", request.hostname);
      });
      const { routesVersion } = await router.removeDomain({ app: request.app, hostname: request.hostname }, callOptions(deps, ctx));
      deps.readModel.routes.wrote(request.app, routesVersion);
      return {};
    },
  };
}
