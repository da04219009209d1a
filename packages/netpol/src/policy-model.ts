import type { RoutingClass } from "@berth/proto/type/v1/process";

/** One process type of an app, as far as the network cares. */
export interface ProcessEntry {
  processType: string;
  routingClass: RoutingClass;
  /** The port it listens on when the scheduler names one (tcp processes on the local engine), else 0. */
  port: number;
}

/** An app as netpol knows it from the scheduler. */
export interface AppEntry {
  name: string;
  team: string;
  /** Tells an app from an older, deleted one of the same name: trust never carries over. */
  createdAtMs: number;
  processes: ProcessEntry[];
}

/**
 * The whole input of policy compilation: every app and every app's trust
 * list (the apps allowed into its `*-tcp` processes). Immutable: every
 * change makes a new model, so compilers and explain answers read one
 * consistent state.
 */
export interface PolicyModel {
  readonly apps: ReadonlyMap<string, AppEntry>;
  /** app → the apps on its trust list, sorted. */
  readonly trust: ReadonlyMap<string, readonly string[]>;
}

/** Orders names by code unit, as Kubernetes lists objects (and much faster than localeCompare). */
export const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

// Models are immutable: each one's apps are grouped by team once, however many teams are compiled from it.
const teamIndex = new WeakMap<PolicyModel, Map<string, AppEntry[]>>();

function appsByTeam(model: PolicyModel): Map<string, AppEntry[]> {
  let index = teamIndex.get(model);
  if (!index) {
    index = new Map();
    for (const app of [...model.apps.values()].sort(byName)) {
      const apps = index.get(app.team);
      if (apps) apps.push(app);
      else index.set(app.team, [app]);
    }
    teamIndex.set(model, index);
  }
  return index;
}

/** The apps of one team, sorted by name. */
export function teamApps(model: PolicyModel, team: string): readonly AppEntry[] {
  return appsByTeam(model).get(team) ?? [];
}

/** Every team that has an app, sorted. */
export function teamsOf(model: PolicyModel): string[] {
  return [...appsByTeam(model).keys()].sort();
}

/** The trust list of `app` (empty when it has none). */
export function trustOf(model: PolicyModel, app: string): readonly string[] {
  return model.trust.get(app) ?? [];
}

/**
 * Memoizes what is compiled from one app: an app's result depends only on
 * its entry and its trust list, and a model shares both objects with the
 * model before it when they did not change, so after a change only the apps
 * it touched are compiled again.
 */
export function memoizePerApp<T>(compile: (model: PolicyModel, app: AppEntry) => T): (model: PolicyModel, app: AppEntry) => T {
  const compiled = new WeakMap<AppEntry, { trust: readonly string[] | undefined; value: T }>();
  return (model, app) => {
    const trust = model.trust.get(app.name);
    const cached = compiled.get(app);
    if (cached && cached.trust === trust) return cached.value;
    const value = compile(model, app);
    compiled.set(app, { trust, value });
    return value;
  };
}
