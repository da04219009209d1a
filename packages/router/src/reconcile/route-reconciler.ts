import { createReconcileLoop } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { RoutingEngine, WebProcessRoutes } from "../engine/routing-engine.js";
import type { RouteTable } from "../route-table.js";
import type { RouterStore } from "../store/router-store.js";

/** Options of createRouteReconciler. */
export interface RouteReconcilerOptions {
  store: Pick<RouterStore, "listRoutes" | "listDomains" | "listTurnHostnames">;
  routes: RouteTable;
  engine: RoutingEngine;
  logger: Logger;
  /** First retry after a failed pass, doubling up to a minute. */
  retryMs?: number;
}

/**
 * Level-triggered: every kick re-reads the stored routes, domains and TURN hostnames and
 * converges the route table and the engine on them. Kicks that arrive during
 * a pass coalesce into one more pass.
 */
export interface RouteReconciler {
  /** Resolves when a pass that started after this call has finished. */
  kick(): Promise<void>;
  close(): void;
}

/** The desired routes of every routed process, from the stored routes (replica > 0: an rtc replica's hostname) and domains. */
export function desiredRoutes(
  routes: readonly { hostname: string; team: string; app: string; processType: string; replica?: number }[],
  domains: readonly { hostname: string; app: string; processType: string }[],
): WebProcessRoutes[] {
  const byProcess = new Map<string, WebProcessRoutes>();
  const entry = (app: string, processType: string, team: string) => {
    const key = `${app}/${processType}`;
    let found = byProcess.get(key);
    if (!found) {
      found = { team, app, processType, hostnames: [] };
      byProcess.set(key, found);
    }
    return found;
  };
  for (const route of routes) {
    const found = entry(route.app, route.processType, route.team);
    found.hostnames.unshift(route.hostname);
    if (route.replica) (found.replicaHostnames ??= []).push({ hostname: route.hostname, replica: route.replica });
  }
  for (const domain of domains) entry(domain.app, domain.processType, "").hostnames.push(domain.hostname);
  return [...byProcess.values()].sort((a, b) => `${a.app}/${a.processType}`.localeCompare(`${b.app}/${b.processType}`));
}

/** Creates the reconciler; nothing runs until the first kick. */
export function createRouteReconciler(options: RouteReconcilerOptions): RouteReconciler {
  const loop = createReconcileLoop({
    name: "route",
    logger: options.logger,
    retryMs: options.retryMs,
    async pass() {
      const [routes, domains, turnHostnames] = await Promise.all([options.store.listRoutes(), options.store.listDomains(), options.store.listTurnHostnames()]);
      options.routes.setDomains(domains);
      await options.engine.apply(desiredRoutes(routes, domains), turnHostnames);
    },
  });
  return { kick: loop.kick, close: loop.close };
}
