import { Code, ConnectError } from "@connectrpc/connect";
import type { HandlerContext } from "@connectrpc/connect";
import { notFound } from "@berth/kit";
import type { App } from "@berth/proto/type/v1/release";
import { requireTeam } from "../auth.js";
import { createFieldChecks } from "@berth/kit";
import type { FieldChecks } from "@berth/kit";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

/** NOT_FOUND for an app the caller may not know about: the same answer whether it is absent or another team's. */
export function appNotFound(name: string): ConnectError {
  return notFound(`app "${name}" not found`);
}

/**
 * The app `name` as the scheduler has it now, if it belongs to `team`.
 * Another team's app is NOT_FOUND, exactly like a missing one, so its
 * existence never leaks.
 */
export async function fetchOwnedApp(deps: ServiceDeps, ctx: HandlerContext, team: string, name: string): Promise<App> {
  let app: App | undefined;
  try {
    app = (await deps.peers.scheduler.getApp({ name }, callOptions(deps, ctx))).app;
  } catch (error) {
    if (ConnectError.from(error).code === Code.NotFound) throw appNotFound(name);
    throw error;
  }
  if (!app || app.team !== team) throw appNotFound(name);
  return app;
}

/**
 * Checks that the app `name` belongs to `team`, from the read model when it
 * holds the app, else from the scheduler. Another team's app is NOT_FOUND,
 * exactly like a missing one.
 */
export async function ownedApp(deps: ServiceDeps, ctx: HandlerContext, team: string, name: string): Promise<void> {
  const owner = deps.readModel.owners.teamOf(name);
  if (owner === undefined) await fetchOwnedApp(deps, ctx, team, name);
  else if (owner !== team) throw appNotFound(name);
}

/**
 * Checks the fields of a request about an app (`app`, plus whatever `check`
 * adds), refusing every problem at once; returns the caller's team.
 */
export function checkAppRequest(ctx: HandlerContext, app: string, check: (checks: FieldChecks) => void = () => {}): string {
  const team = requireTeam(ctx);
  const checks = createFieldChecks();
  checks.dnsLabel("app", app);
  check(checks);
  checks.throwIfAny();
  return team;
}

/**
 * Checks a request about an app (see checkAppRequest), then that the app is
 * the caller's team's; returns the team.
 */
export async function requireOwnedApp(deps: ServiceDeps, ctx: HandlerContext, app: string, check?: (checks: FieldChecks) => void): Promise<string> {
  const team = checkAppRequest(ctx, app, check);
  await ownedApp(deps, ctx, team, app);
  return team;
}

/**
 * A read of something of an app the caller's team must own: the fields are
 * checked first (see checkAppRequest), then the ownership check and the read
 * run at once; the read's answer, or its error, is dropped unless the app is
 * the caller's.
 */
export async function readOwnedApp<T>(
  deps: ServiceDeps,
  ctx: HandlerContext,
  app: string,
  read: (options: ReturnType<typeof callOptions>) => Promise<T>,
  check?: (checks: FieldChecks) => void,
): Promise<T> {
  const team = checkAppRequest(ctx, app, check);
  // Settled both, so that the read's failure (say NOT_FOUND for a release) never answers for another team's app.
  const [owned, result] = await Promise.allSettled([ownedApp(deps, ctx, team, app), read(callOptions(deps, ctx))]);
  if (owned.status === "rejected") throw owned.reason;
  if (result.status === "rejected") throw result.reason;
  return result.value;
}
