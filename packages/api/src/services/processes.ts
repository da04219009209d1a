import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  SetHealthCheckRequestSchema,
  SetHealthCheckResponseSchema,
  UnsetHealthCheckRequestSchema,
  UnsetHealthCheckResponseSchema,
} from "@berth/proto/api/v1/processes";
import type { ProcessService } from "@berth/proto/api/v1/processes";
import type { HealthCheck } from "@berth/proto/type/v1/process";
import { streamCall } from "../peers.js";
import { readOwnedApp, requireOwnedApp } from "./app-ownership.js";
import { runOnce } from "./idempotency.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

const MAX_REPLICA_NAME = 253;

/** ProcessService: health checks, one-off commands, exec beside a replica, a replica's description. */
export function createProcessService(deps: ServiceDeps): ServiceImpl<typeof ProcessService> {
  const { scheduler } = deps.peers;
  const { requestIds } = deps.store;

  /**
   * Checks a change to a type's health check and returns who owns it and the
   * scheduler call that sets (or, with `reset`, first clears) it through a new
   * release, for `runOnce` to run at most once per request id.
   */
  async function changeHealthCheck(
    ctx: HandlerContext,
    request: { app: string; processType: string; requestId: string },
    health: HealthCheck | undefined,
    reset: boolean,
  ) {
    const owner = await requireOwnedApp(deps, ctx, request.app, (checks) => {
      checks.dnsLabel("process_type", request.processType);
      checks.requestId("request_id", request.requestId);
      if (!reset && health === undefined) checks.add("health", "must set at least one setting, like path or interval_ms");
    });
    const run = async (requestId: string) => {
      const { release, rollout, process } = await scheduler.updateHealthCheck(
        { app: request.app, processType: request.processType, health, reset, requestId },
        callOptions(deps, ctx),
      );
      return { release, rollout, process };
    };
    return { owner, run };
  }

  return {
    async setHealthCheck(request, ctx) {
      const { owner, run } = await changeHealthCheck(ctx, request, request.health, false);
      const method = "ProcessService/SetHealthCheck";
      return runOnce(requestIds, { owner, method, requestSchema: SetHealthCheckRequestSchema, request, responseSchema: SetHealthCheckResponseSchema }, run);
    },

    async unsetHealthCheck(request, ctx) {
      const { owner, run } = await changeHealthCheck(ctx, request, undefined, true);
      const method = "ProcessService/UnsetHealthCheck";
      return runOnce(requestIds, { owner, method, requestSchema: UnsetHealthCheckRequestSchema, request, responseSchema: UnsetHealthCheckResponseSchema }, run);
    },

    async *run(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.shellCommand("command", request.command);
      });
      for await (const { output } of scheduler.runCommand({ app: request.app, command: request.command }, streamCall(ctx))) yield { output };
    },

    async *exec(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.required("replica", request.replica, MAX_REPLICA_NAME);
        checks.shellCommand("command", request.command);
      });
      const outputs = scheduler.runCommand({ app: request.app, replica: request.replica, command: request.command }, streamCall(ctx));
      for await (const { output } of outputs) yield { output };
    },

    async describeReplica(request, ctx) {
      const response = await readOwnedApp(
        deps,
        ctx,
        request.app,
        (options) => scheduler.describeReplica({ app: request.app, replica: request.replica }, options),
        (checks) => checks.required("replica", request.replica, MAX_REPLICA_NAME),
      );
      return { description: response.description };
    },
  };
}
