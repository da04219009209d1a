import type { LocalAllow, LocalPeer } from "@berth/proto/netpol/v1/netpol";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { AppEntry, PolicyModel } from "../policy-model.js";
import { byName, memoizePerApp, trustOf } from "../policy-model.js";

/** The rule letting the ingress data plane into an app's web processes. */
export const webRuleName = (app: string) => `${app}.web:ingress`;
/** The rule letting `from` (on `app`'s trust list, or `app` itself) into its tcp processes. */
export const tcpRuleName = (app: string, from: string) => `${app}.tcp:${from === app ? "self" : from}`;
/** The rule letting an rtc process's own TURN gateway into it. */
export const rtcRuleName = (app: string, processType: string) => `${app}.${processType}:turn-gateway`;

const hasClass = (app: AppEntry, routingClass: RoutingClass) => app.processes.some((process) => process.routingClass === routingClass);

// Built as messages directly rather than through create(): a platform compiles tens of thousands of them on every change.
function allow(rule: string, from: LocalPeer["kind"], toApp: string, toClass: RoutingClass, toProcessType = ""): LocalAllow {
  return { $typeName: "berth.netpol.v1.LocalAllow", rule, from: { $typeName: "berth.netpol.v1.LocalPeer", kind: from }, toApp, toClass, toProcessType };
}

/** The allows of one app: what may reach its web, tcp and rtc processes. */
function compileAppAllows(model: PolicyModel, app: AppEntry): LocalAllow[] {
  const allows: LocalAllow[] = [];
  if (hasClass(app, RoutingClass.WEB)) allows.push(allow(webRuleName(app.name), { case: "ingress", value: true }, app.name, RoutingClass.WEB));
  if (hasClass(app, RoutingClass.TCP)) {
    // An app's own processes reach each other; its trust list adds siblings of its team, never another team's app.
    const sources = [app.name, ...trustOf(model, app.name).filter((name) => model.apps.get(name)?.team === app.team)];
    for (const source of sources) allows.push(allow(tcpRuleName(app.name, source), { case: "app", value: source }, app.name, RoutingClass.TCP));
  }
  for (const process of app.processes) {
    if (process.routingClass !== RoutingClass.RTC) continue;
    allows.push(
      allow(
        rtcRuleName(app.name, process.processType),
        { case: "turnGateway", value: { $typeName: "berth.netpol.v1.LocalTurnGateway", app: app.name, processType: process.processType } },
        app.name,
        RoutingClass.RTC,
        process.processType,
      ),
    );
  }
  return allows;
}

/**
 * The model compiled for one machine: every allow of every team, sorted by
 * app. Everything not allowed is denied: workers and `release` appear in no
 * allow, and no allow crosses teams.
 */
export function compileLocalPolicy(model: PolicyModel): LocalAllow[] {
  return [...model.apps.values()].sort(byName).flatMap((app) => cachedAppAllows(model, app));
}

const cachedAppAllows = memoizePerApp(compileAppAllows);
