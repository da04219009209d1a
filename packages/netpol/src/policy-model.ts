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

/** The apps of one team, sorted by name. */
export function teamApps(model: PolicyModel, team: string): AppEntry[] {
  return [...model.apps.values()].filter((app) => app.team === team).sort((a, b) => a.name.localeCompare(b.name));
}

/** Every team that has an app, sorted. */
export function teamsOf(model: PolicyModel): string[] {
  return [...new Set([...model.apps.values()].map((app) => app.team))].sort();
}

/** The trust list of `app` (empty when it has none). */
export function trustOf(model: PolicyModel, app: string): readonly string[] {
  return model.trust.get(app) ?? [];
}
