import { routingClassName } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { AppEntry, PolicyModel } from "../policy-model.js";
import { teamApps, trustOf } from "../policy-model.js";

/** "Can app A (process P) reach app B's process Q on port N": the names are known to exist. */
export interface ReachabilityQuery {
  from: AppEntry;
  /** Empty: any process of the app (the policies tell an app's processes apart only on the receiving side). */
  fromProcessType: string;
  to: AppEntry;
  toProcessType: string;
  /** 0: the port the target process listens on. */
  port: number;
}

/** The answer, with the rules that decided it. */
export interface Reachability {
  allowed: boolean;
  reasons: string[];
  /** Rule or policy names. */
  policies: string[];
}

/** Answers reachability questions from one compiled form of the policy. */
export interface Explainer {
  explain(model: PolicyModel, query: ReachabilityQuery): Reachability;
}

/** The class of `app`'s process `processType`. */
export function classOf(app: AppEntry, processType: string): RoutingClass {
  return app.processes.find((process) => process.processType === processType)?.routingClass ?? RoutingClass.UNSPECIFIED;
}

/** Why nothing can allow this, whatever the policies, or undefined when a grant could. */
export function contractReason(query: ReachabilityQuery): string | undefined {
  const target = `${query.to.name}/${query.toProcessType}`;
  switch (classOf(query.to, query.toProcessType)) {
    case RoutingClass.WORKER:
    case RoutingClass.RELEASE:
      return `${target} is a ${routingClassName(classOf(query.to, query.toProcessType))} process: nothing on the network reaches it`;
    case RoutingClass.WEB:
      return `${target} is a web process: only the ingress data plane reaches it (call its public URL instead)`;
    case RoutingClass.RTC:
      return `${target} is an rtc process: only its own TURN gateway reaches it (and the ingress data plane its replicas' own hostnames)`;
    default:
      return query.from.team === query.to.team ? undefined : `${query.from.name} and ${query.to.name} are in different teams: no path between teams exists`;
  }
}

/** The grant that is missing, when a trust list entry would open the path: a tcp target of the same team the source is not trusted by. */
export function missingGrant(model: PolicyModel, query: ReachabilityQuery): string | undefined {
  if (classOf(query.to, query.toProcessType) !== RoutingClass.TCP || query.from.team !== query.to.team || query.from.name === query.to.name) return undefined;
  if (trustOf(model, query.to.name).includes(query.from.name)) return undefined;
  return `${query.from.name} is not on ${query.to.name}'s trust list; to allow it: berth apps:trust:add ${query.from.name} --app ${query.to.name}`;
}

/** One cell of a team's reachability matrix. */
export interface MatrixEntry {
  fromApp: string;
  toApp: string;
  toProcessType: string;
  port: number;
  allowed: boolean;
}

/** The apps a matrix covers at most: it grows with their square. */
export const MAX_MATRIX_APPS = 200;

/** Every app of the team against every process of every app of the team (itself included), as `explainer` decides. */
export function teamMatrix(model: PolicyModel, team: string, explainer: Explainer, portOf: (app: AppEntry, processType: string) => number): MatrixEntry[] {
  const apps = teamApps(model, team);
  const entries: MatrixEntry[] = [];
  for (const from of apps) {
    for (const to of apps) {
      for (const process of to.processes) {
        const { allowed } = explainer.explain(model, { from, fromProcessType: "", to, toProcessType: process.processType, port: 0 });
        entries.push({ fromApp: from.name, toApp: to.name, toProcessType: process.processType, port: portOf(to, process.processType), allowed });
      }
    }
  }
  return entries;
}
