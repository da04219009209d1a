import type { ServiceImpl } from "@connectrpc/connect";
import { routingClassOf } from "@berth/kit";
import type { RtcService } from "@berth/proto/api/v1/network";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { requireTeam } from "../auth.js";
import { createFieldChecks } from "../field-checks.js";
import type { FieldChecks } from "../field-checks.js";
import { ownedApp } from "./app-ownership.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

const MAX_TTL_SECONDS = 7 * 24 * 60 * 60;
const MAX_USER = 128;

function checkRtcType(checks: FieldChecks, processType: string): void {
  checks.dnsLabel("process_type", processType);
  if (processType !== "" && routingClassOf(processType) !== RoutingClass.RTC) {
    checks.add("process_type", `"${processType}" is not an rtc process: only *-rtc processes get TURN gateways`);
  }
}

/**
 * RtcService: TURN credentials and allocations of `*-rtc` processes, from
 * the TURN allocator. While the allocator is not built it answers
 * UNIMPLEMENTED, and so does this service.
 */
export function createRtcService(deps: ServiceDeps): ServiceImpl<typeof RtcService> {
  const { turnAllocator } = deps.peers;
  return {
    async getCredentials(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      checkRtcType(checks, request.processType);
      checks.maxLength("user", request.user, MAX_USER);
      if (request.ttlSeconds > MAX_TTL_SECONDS) checks.add("ttl_seconds", `must be at most ${MAX_TTL_SECONDS}, got ${request.ttlSeconds}`);
      checks.throwIfAny();
      await ownedApp(deps, ctx, team, request.app);
      const { credentials } = await turnAllocator.mintCredentials(
        { app: request.app, processType: request.processType, user: request.user, ttlSeconds: request.ttlSeconds },
        callOptions(deps, ctx),
      );
      return { credentials };
    },
    async listAllocations(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      checks.throwIfAny();
      await ownedApp(deps, ctx, team, request.app);
      const { allocations } = await turnAllocator.listAllocations({ app: request.app }, callOptions(deps, ctx));
      return { allocations };
    },
    async rotateSecret(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      checkRtcType(checks, request.processType);
      checks.throwIfAny();
      await ownedApp(deps, ctx, team, request.app);
      const { allocation } = await turnAllocator.rotateSecret({ app: request.app, processType: request.processType }, callOptions(deps, ctx));
      return { allocation };
    },
  };
}
