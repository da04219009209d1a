import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { alreadyExists, createFieldChecks, failedPrecondition } from "@berth/kit";
import { CreateAppRequestSchema, CreateAppResponseSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { ReplicaState } from "@berth/proto/type/v1/process";
import { appKey } from "../change-feed.js";
import { DEFAULT_POD_SIZE } from "../pod-sizes.js";
import { claimRouteHostnames } from "../route-hostnames.js";
import { findApp, insertApp, listApps, markAppDeleting } from "../store/apps.js";
import { ensureFormationEntry } from "../store/formation.js";
import { listReplicas } from "../store/replicas.js";
import type { ReplicaRecord } from "../store/replicas.js";
import { findActiveRollout } from "../store/rollouts.js";
import { appMessage } from "../views.js";
import { appProcesses, requireApp } from "./app-reads.js";
import { runOnce } from "./idempotency.js";
import { checkRequestId, requireName } from "./request-checks.js";
import { afterChange, appVersion } from "./service-deps.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

/** The longest DeleteApp waits for an app's replicas to leave the endpoints before answering that the deletion continues. */
const MAX_DELETE_WAIT_MS = 20_000;
/** What is left of the caller's deadline (at least, or a quarter of it) for the answer to reach it and the API to finish its own steps. */
const DELETE_ANSWER_MARGIN_MS = 1500;

/** An app of that name is marked for deletion but some of its replicas have not stopped yet. */
const stillStopping = (name: string) =>
  failedPrecondition(
    `app "${name}" is being deleted: its replicas are still stopping (SIGKILL follows SIGTERM after the stop grace period); it is gone once they have`,
  );

/** Whether the router may still send the replica requests: it is published as an endpoint. */
const takesRequests = (replica: ReplicaRecord) => replica.retirePhase === "" && replica.ready && replica.state === ReplicaState.UP;

type AppHandlers = Pick<ServiceImpl<typeof SchedulerService>, "createApp" | "getApp" | "listApps" | "deleteApp" | "watchApps">;

/** The handlers of apps: create, read, delete, and the stream of every app's processes. */
export function createAppHandlers(deps: SchedulerServiceDeps): AppHandlers {
  const { db, config, feed } = deps;
  return {
    async createApp(request) {
      const checks = createFieldChecks();
      checks.dnsLabel("team", request.team);
      checks.dnsLabel("name", request.name);
      checkRequestId(checks, request.requestId);
      checks.throwIfAny();
      const response = await runOnce(
        db,
        { scope: `CreateApp:${request.team}`, requestSchema: CreateAppRequestSchema, request, responseSchema: CreateAppResponseSchema },
        async (tx) => {
          const app = await insertApp(tx, request.name, request.team);
          if (app === undefined) {
            if ((await findApp(tx, request.name))?.deleting) throw stillStopping(request.name);
            throw alreadyExists(`app "${request.name}" already exists`);
          }
          await claimRouteHostnames(tx, app.name, ["web"]);
          await ensureFormationEntry(tx, app.name, "web", 1, DEFAULT_POD_SIZE);
          return create(CreateAppResponseSchema, { app: appMessage(app, "") });
        },
      );
      feed.notify(appKey(request.name));
      return response;
    },

    async getApp(request) {
      const app = await requireApp(db, request.name);
      const rollout = await findActiveRollout(db, app.name);
      return { app: appMessage(app, rollout?.id ?? "") };
    },

    async listApps(request) {
      if (request.team !== "") requireName("team", request.team);
      const apps = await listApps(db, request.team);
      return { apps: await Promise.all(apps.map(async (app) => appMessage(app, (await findActiveRollout(db, app.name))?.id ?? ""))) };
    },

    async deleteApp(request, ctx) {
      const remainingMs = ctx.timeoutMs() ?? MAX_DELETE_WAIT_MS;
      const waitMs = Math.min(MAX_DELETE_WAIT_MS, remainingMs - Math.max(DELETE_ANSWER_MARGIN_MS, remainingMs / 4));
      const waited = AbortSignal.any([ctx.signal, AbortSignal.timeout(Math.max(0, Math.floor(waitMs)))]);
      await requireApp(db, request.name);
      // A second delete would only wait on the first one's stop: it is told so instead.
      if (!(await markAppDeleting(db, request.name))) throw stillStopping(request.name);
      afterChange(deps, request.name);
      // The answer comes once no replica takes requests: a replica that ignores SIGTERM holds
      // the rest of its stop for the whole grace period, which the reconciler carries on with
      // (after a restart too, from the mark). An app with nothing running goes within the call.
      for (;;) {
        const version = feed.version(appKey(request.name));
        if ((await findApp(db, request.name)) === undefined) return { deletionContinues: false };
        const replicas = await listReplicas(db, request.name);
        if (waited.aborted || (replicas.length > 0 && !replicas.some(takesRequests))) return { deletionContinues: true };
        await feed.changedSince(appKey(request.name), version, waited);
      }
    },

    async *watchApps(_request, ctx) {
      const changed: string[] = [];
      let wake: (() => void) | undefined;
      const stop = feed.subscribe((key) => {
        if (!key.startsWith("app:")) return;
        const name = key.slice(4);
        if (!changed.includes(name)) changed.push(name);
        wake?.();
      });
      const onAbort = () => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        const read = (name: string) => appProcesses(db, config, name, appVersion(feed, name));
        const apps = await listApps(db);
        yield { snapshot: true, apps: await Promise.all(apps.map((app) => read(app.name))) };
        while (!ctx.signal.aborted) {
          const name = changed.shift();
          if (name === undefined) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          yield { snapshot: false, apps: [await read(name)] };
        }
      } finally {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
