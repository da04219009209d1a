import type { Queryable } from "@berth/kit";
import { alreadyExists, routeHostLabel } from "@berth/kit";
import { DEFAULT_PROCESSES } from "./release-commands.js";
import { listOtherAppsProcessTypes } from "./store/apps.js";

/** A platform hostname two apps would share. */
export interface RouteCollision {
  /** The hostname's first label, e.g. `a-b` of `a-b.<domain>`. */
  label: string;
  processType: string;
  otherApp: string;
  otherProcessType: string;
}

/** The first web process of `app` whose platform hostname one of `others` already has. */
export function findRouteCollision(
  app: string,
  processTypes: readonly string[],
  others: readonly { app: string; processTypes: readonly string[] }[],
): RouteCollision | undefined {
  const claimed = new Map<string, { otherApp: string; otherProcessType: string }>();
  for (const other of others) {
    for (const processType of other.processTypes) {
      const label = routeHostLabel(other.app, processType);
      if (label !== undefined) claimed.set(label, { otherApp: other.app, otherProcessType: processType });
    }
  }
  for (const processType of processTypes) {
    const label = routeHostLabel(app, processType);
    const owner = label === undefined ? undefined : claimed.get(label);
    if (label !== undefined && owner !== undefined) return { label, processType, ...owner };
  }
  return undefined;
}

/**
 * Refuses, with ALREADY_EXISTS naming the hostname, web processes of `app`
 * whose platform hostname another app (of any team) already has: app `a-b`'s
 * `web` and app `a`'s `b-web` are both `a-b.<domain>`. Claims are taken one
 * at a time (a lock held until the caller's transaction ends), so two
 * concurrent deploys cannot both take one hostname.
 */
export async function claimRouteHostnames(tx: Queryable, app: string, processTypes: readonly string[]): Promise<void> {
  if (!processTypes.some((processType) => routeHostLabel(app, processType) !== undefined)) return;
  await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':route-hostnames'))");
  const others = await listOtherAppsProcessTypes(
    tx,
    app,
    DEFAULT_PROCESSES.map((process) => process.processType),
  );
  const collision = findRouteCollision(app, processTypes, others);
  if (collision !== undefined) {
    throw alreadyExists(
      `the hostname ${collision.label}.<platform domain> of "${collision.processType}" is already app "${collision.otherApp}"'s ("${collision.otherProcessType}"); rename the process type or the app`,
    );
  }
}
