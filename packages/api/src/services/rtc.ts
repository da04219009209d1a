import { Code, ConnectError } from "@connectrpc/connect";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { mintWithinLimit, rtcProcessProblem, turnTtlProblem, turnUserProblem } from "@berth/kit";
import type { RtcService } from "@berth/proto/api/v1/network";
import type { FieldChecks } from "@berth/kit";
import { requireOwnedApp } from "./app-ownership.js";
import { wroteApp } from "./app-versions.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

function checkRtcType(checks: FieldChecks, processType: string): void {
  const problem = rtcProcessProblem(processType);
  if (problem !== undefined) checks.add("process_type", problem);
}

/** Why a restart is not needed: nothing of the process runs yet, or a rollout under way starts replicas with the new secret. */
const NOTHING_TO_ROLL = new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.NotFound]);

/**
 * Rolls the process, one replica at a time gated by health, so that every
 * replica sees the new TURN_SHARED_SECRET; the previous secret stays valid
 * at the gateway meanwhile.
 */
async function rollForNewSecret(deps: ServiceDeps, ctx: HandlerContext, app: string, processType: string): Promise<void> {
  try {
    const { appVersion } = await deps.peers.scheduler.restartProcess({ app, processType }, callOptions(deps, ctx));
    wroteApp(deps, app, appVersion);
  } catch (error) {
    if (!NOTHING_TO_ROLL.has(ConnectError.from(error).code)) throw error;
  }
}

/**
 * RtcService: TURN credentials and allocations of `*-rtc` processes, for
 * apps of the caller's team. Credentials are minted here from the secrets
 * the TURN allocator streams (one hop), on the allocator's policy and its
 * shared per-app rate limit; a process the stream does not show yet is
 * minted for by the allocator. Allocations and rotations are the allocator's.
 */
export function createRtcService(deps: ServiceDeps): ServiceImpl<typeof RtcService> {
  const { turnAllocator } = deps.peers;
  return {
    async getCredentials(request, ctx) {
      const local = deps.readModel.mintingTargets.get(request.app, request.processType);
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checkRtcType(checks, request.processType);
        // The allocator checks what the API cannot (it has no policy yet): the same rules, by field.
        if (local !== undefined) {
          const userProblem = turnUserProblem(request.user);
          if (userProblem !== undefined) checks.add("user", userProblem);
          const ttlProblem = turnTtlProblem(request.ttlSeconds, local.policy);
          if (ttlProblem !== undefined) checks.add("ttl_seconds", ttlProblem);
        }
      });
      if (local !== undefined) {
        return { credentials: await mintWithinLimit(deps.rateLimits, local.policy, local.target, request, Date.now()) };
      }
      const { credentials } = await turnAllocator.mintCredentials(
        { app: request.app, processType: request.processType, user: request.user, ttlSeconds: request.ttlSeconds },
        callOptions(deps, ctx),
      );
      return { credentials };
    },
    async listAllocations(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app);
      const { allocations } = await turnAllocator.listAllocations({ app: request.app }, callOptions(deps, ctx));
      return { allocations };
    },
    async rotateSecret(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checkRtcType(checks, request.processType);
      });
      const { allocation } = await turnAllocator.rotateSecret({ app: request.app, processType: request.processType }, callOptions(deps, ctx));
      deps.readModel.mintingTargets.changed(request.app);
      await rollForNewSecret(deps, ctx, request.app, request.processType);
      return { allocation };
    },
  };
}
