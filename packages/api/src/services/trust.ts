import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { TrustService } from "@berth/proto/api/v1/network";
import { TrustMode } from "@berth/proto/netpol/v1/netpol";
import { requireTeam } from "../auth.js";
import { createFieldChecks } from "@berth/kit";
import { checkAppRequest, ownedApp, requireOwnedApp } from "./app-ownership.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

const MAX_TRUSTED_APPS = 100;

/** Checks every named app is the caller's: trust only ever joins apps of one team. */
async function ownedApps(deps: ServiceDeps, ctx: HandlerContext, team: string, apps: readonly string[]): Promise<void> {
  await Promise.all([...new Set(apps)].map((app) => ownedApp(deps, ctx, team, app)));
}

/** Checks `app` and the names it is to trust: DNS labels, not itself, at most MAX_TRUSTED_APPS. */
function checkTrustRequest(request: { app: string; trustedApps: readonly string[] }, requireNames: boolean): void {
  const checks = createFieldChecks();
  checks.dnsLabel("app", request.app);
  if (requireNames && request.trustedApps.length === 0) checks.add("trusted_apps", "must name at least one app");
  if (request.trustedApps.length > MAX_TRUSTED_APPS) {
    checks.add("trusted_apps", `must name at most ${MAX_TRUSTED_APPS} apps, got ${request.trustedApps.length}`);
  } else {
    request.trustedApps.forEach((app, index) => {
      checks.dnsLabel(`trusted_apps[${index}]`, app);
      if (app === request.app) checks.add(`trusted_apps[${index}]`, "an app always reaches itself");
    });
  }
  checks.throwIfAny();
}

/**
 * TrustService: which apps of the team may reach an app's `*-tcp`
 * processes, and what the compiled policies let through, from netpol. Every
 * app named must be the caller's team's: another team's is NOT_FOUND, like
 * a missing one.
 */
export function createTrustService(deps: ServiceDeps): ServiceImpl<typeof TrustService> {
  const { netpol } = deps.peers;
  /** SetTrust (REPLACE) and AddTrust (ADD, which must name an app). */
  async function changeTrust(request: { app: string; trustedApps: string[] }, ctx: HandlerContext, mode: TrustMode) {
    const team = requireTeam(ctx);
    checkTrustRequest(request, mode === TrustMode.ADD);
    await ownedApps(deps, ctx, team, [request.app, ...request.trustedApps]);
    const { trust } = await netpol.setTrust({ app: request.app, trustedApps: request.trustedApps, mode }, callOptions(deps, ctx));
    return { trust };
  }
  return {
    async getTrust(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app);
      const { trust } = await netpol.getTrust({ app: request.app }, callOptions(deps, ctx));
      return { trust };
    },
    setTrust: (request, ctx) => changeTrust(request, ctx, TrustMode.REPLACE),
    addTrust: (request, ctx) => changeTrust(request, ctx, TrustMode.ADD),
    async removeTrust(request, ctx) {
      const team = checkAppRequest(ctx, request.app, (checks) => checks.dnsLabel("trusted_app", request.trustedApp));
      await ownedApps(deps, ctx, team, [request.app, request.trustedApp]);
      const { trust } = await netpol.removeTrust({ app: request.app, trustedApp: request.trustedApp }, callOptions(deps, ctx));
      return { trust };
    },
    async clearTrust(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app);
      await netpol.clearTrust({ app: request.app }, callOptions(deps, ctx));
      return {};
    },
    async explain(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("from_app", request.fromApp);
      checks.dnsLabel("to_app", request.toApp);
      if (request.fromProcessType !== "") checks.dnsLabel("from_process_type", request.fromProcessType);
      checks.dnsLabel("to_process_type", request.toProcessType);
      if (request.port > 65535) checks.add("port", `must be a TCP port, got ${request.port}`);
      checks.throwIfAny();
      await ownedApps(deps, ctx, team, [request.fromApp, request.toApp]);
      const { verdict } = await netpol.explain(
        { fromApp: request.fromApp, fromProcessType: request.fromProcessType, toApp: request.toApp, toProcessType: request.toProcessType, port: request.port },
        callOptions(deps, ctx),
      );
      return { verdict };
    },
    async getMatrix(_request, ctx) {
      const team = requireTeam(ctx);
      const { entries } = await netpol.getMatrix({ team }, callOptions(deps, ctx));
      return { entries };
    },
  };
}
