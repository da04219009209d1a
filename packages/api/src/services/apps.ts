import { Code, ConnectError } from "@connectrpc/connect";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { type AppService, CreateAppRequestSchema, CreateAppResponseSchema } from "@berth/proto/api/v1/apps";
import { requireTeam } from "../auth.js";
import { createFieldChecks, failedPrecondition } from "@berth/kit";
import { checkAppRequest, fetchOwnedApp } from "./app-ownership.js";
import { formationView } from "./formation.js";
import { runOnce } from "./idempotency.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

type AppHandlers = Pick<ServiceImpl<typeof AppService>, "createApp" | "listApps" | "getApp" | "deleteApp">;

/** Runs a cleanup step of a service that may not be built yet: UNIMPLEMENTED means it holds nothing to clean. */
async function unlessUnimplemented(step: Promise<unknown>): Promise<void> {
  try {
    await step;
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Unimplemented) throw error;
  }
}

/**
 * Deletes an app in an order that never leaves a half-done state visible:
 * its processes stop, then its routes, domains and certificates go, then its
 * TURN allocations and trust grants, then the app itself and its git
 * repository. Every step
 * is idempotent, so a delete that failed half-way is finished by retrying it.
 */
async function deleteOwnedApp(deps: ServiceDeps, ctx: HandlerContext, app: string): Promise<{ deletionContinues: boolean }> {
  const { scheduler, router, turnAllocator, netpol } = deps.peers;
  const options = () => callOptions(deps, ctx);
  // Autoscale rules would refuse (and undo) a scale to zero.
  const { rules } = await scheduler.listAutoscale({ app }, options());
  for (const rule of rules) await scheduler.unsetAutoscale({ app, processType: rule.processType }, options());
  const { processes } = await scheduler.getFormation({ app }, options());
  const running = processes.filter((process) => process.replicas > 0);
  if (running.length > 0) {
    await scheduler.updateFormation({ app, changes: running.map((process) => ({ processType: process.processType, replicas: 0 })) }, options());
  }
  const { routesVersion } = await router.deleteAppRoutes({ app }, options());
  deps.readModel.routes.wrote(app, routesVersion);
  await unlessUnimplemented(turnAllocator.releaseApp({ app }, options()));
  await unlessUnimplemented(netpol.forgetApp({ app }, options()));
  const { deletionContinues } = await scheduler.deleteApp({ name: app }, options());
  await deps.repositories.remove(app);
  return { deletionContinues };
}

/** AppService's app lifecycle: create, list, show, delete. */
export function createAppHandlers(deps: ServiceDeps): AppHandlers {
  const { scheduler } = deps.peers;
  return {
    async createApp(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("name", request.name);
      checks.requestId("request_id", request.requestId);
      checks.throwIfAny();
      return runOnce(
        deps.store.requestIds,
        { owner: team, method: "AppService/CreateApp", requestSchema: CreateAppRequestSchema, request, responseSchema: CreateAppResponseSchema },
        async (requestId) => {
          const { app } = await scheduler.createApp({ team, name: request.name, requestId }, callOptions(deps, ctx));
          return { app };
        },
      );
    },
    async listApps(_request, ctx) {
      const team = requireTeam(ctx);
      const { apps } = await scheduler.listApps({ team }, callOptions(deps, ctx));
      return { apps: apps.filter((app) => app.team === team) };
    },
    async getApp(request, ctx) {
      const team = checkAppRequest(ctx, request.app);
      const app = await fetchOwnedApp(deps, ctx, team, request.app);
      const [processes, release] = await Promise.all([
        formationView(deps, ctx, request.app),
        app.currentReleaseVersion > 0 ? scheduler.getRelease({ app: request.app, version: app.currentReleaseVersion }, callOptions(deps, ctx)) : undefined,
      ]);
      return { app, processes, currentRelease: release?.release };
    },
    async deleteApp(request, ctx) {
      const team = checkAppRequest(ctx, request.app);
      const app = await fetchOwnedApp(deps, ctx, team, request.app);
      if (app.deleting) {
        // Only the repository may be left of a delete that failed after the scheduler took it.
        await deps.repositories.remove(request.app);
        throw failedPrecondition(`app "${request.app}" is being deleted: its replicas are still stopping; it is gone once they have`);
      }
      const { deletionContinues } = await deleteOwnedApp(deps, ctx, request.app);
      // An app still stopping stays visible, marked deleting, until the scheduler forgets it.
      if (!deletionContinues) deps.readModel.owners.deleted(app);
      return { deletionContinues };
    },
  };
}
