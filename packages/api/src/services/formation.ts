import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { FormationService } from "@berth/proto/api/v1/formation";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AppVersion, FormationChangeSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { Route, RtcAllocation } from "@berth/proto/type/v1/network";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { ProcessFormation } from "@berth/proto/type/v1/process";
import type { Rollout } from "@berth/proto/type/v1/release";
import { callerOf, requireTeam } from "../auth.js";
import { createFieldChecks, MIN_CPU_MILLIS, MIN_MEMORY_MB } from "@berth/kit";
import type { FieldChecks } from "@berth/kit";
import { joinFormation } from "../formation-view.js";
import { streamCall } from "../peers.js";
import { ownedApp, readOwnedApp, requireOwnedApp } from "./app-ownership.js";
import { parseAppVersion, wroteApp } from "./app-versions.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

const MAX_TAIL_LINES = 10_000;
const MAX_REPLICA_NAME = 253;
// How long a read waits for the scheduler's stream to show a write before it asks the scheduler:
// the stream shows a write within milliseconds, unless it is down or behind a busy scheduler.
const STREAM_WAIT_MS = 250;

/** The routes of an app: from the read model when it is up to date, else from the router. */
async function routesOf(deps: ServiceDeps, ctx: HandlerContext, app: string): Promise<readonly Route[]> {
  return deps.readModel.routes.routesOf(app) ?? (await deps.peers.router.listRoutes({ app }, callOptions(deps, ctx))).routes;
}

/** The TURN allocations of an app's rtc processes; no call at all for an app without one. */
async function allocationsOf(deps: ServiceDeps, ctx: HandlerContext, app: string, processes: readonly ProcessFormation[]): Promise<readonly RtcAllocation[]> {
  if (!processes.some((process) => process.routingClass === RoutingClass.RTC)) return [];
  return (await deps.peers.turnAllocator.listAllocations({ app }, callOptions(deps, ctx))).allocations;
}

/**
 * The process types of an app: from the read model when it holds `least`
 * and this API's own writes (waiting briefly for the stream to show them),
 * else from the scheduler.
 */
async function processesOf(deps: ServiceDeps, ctx: HandlerContext, app: string, least?: AppVersion): Promise<readonly ProcessFormation[]> {
  return (await deps.readModel.formations.read(app, least, STREAM_WAIT_MS, ctx.signal)) ?? (await deps.formations.read(app, ctx));
}

/** The formation of an app joined with its routes and TURN gateways: what `pods` shows. */
export async function formationView(deps: ServiceDeps, ctx: HandlerContext, app: string, least?: AppVersion): Promise<ProcessFormation[]> {
  const [processes, routes] = await Promise.all([processesOf(deps, ctx, app, least), routesOf(deps, ctx, app)]);
  return joinFormation(app, processes, routes, await allocationsOf(deps, ctx, app, processes));
}

/** A formation the scheduler sent (in a stream, say), joined with the app's routes and TURN gateways. */
export async function joinedFormation(
  deps: ServiceDeps,
  ctx: HandlerContext,
  app: string,
  processes: readonly ProcessFormation[],
): Promise<ProcessFormation[]> {
  const [routes, allocations] = await Promise.all([routesOf(deps, ctx, app), allocationsOf(deps, ctx, app, processes)]);
  return joinFormation(app, processes, routes, allocations);
}

/** Checks the app is the caller's and reads its formation, both at once. */
async function ownedFormation(
  deps: ServiceDeps,
  ctx: HandlerContext,
  team: string,
  app: string,
  named: readonly string[],
): Promise<readonly ProcessFormation[]> {
  const [, processes] = await Promise.all([ownedApp(deps, ctx, team, app), processesOf(deps, ctx, app)]);
  // A type the read model lacks may be one a deploy just added that its stream has not shown yet: the scheduler decides before a refusal.
  if (named.some((processType) => !processes.some((process) => process.processType === processType))) return deps.formations.read(app, ctx);
  return processes;
}

function checkKnownType(checks: FieldChecks, field: string, processType: string, processes: readonly ProcessFormation[]): void {
  if (!processes.some((process) => process.processType === processType)) {
    const known = processes.map((process) => process.processType).join(", ") || "none";
    checks.add(field, `the app has no process type "${processType}" (it has: ${known})`);
  }
}

/** Applies formation changes and answers with the joined view. */
async function changeFormation(
  deps: ServiceDeps,
  ctx: HandlerContext,
  app: string,
  changes: MessageInitShape<typeof FormationChangeSchema>[],
): Promise<{ processes: ProcessFormation[]; appVersion: string; rollout: Rollout | undefined }> {
  const [updated, routes] = await Promise.all([deps.peers.scheduler.updateFormation({ app, changes }, callOptions(deps, ctx)), routesOf(deps, ctx, app)]);
  const appVersion = wroteApp(deps, app, updated.appVersion);
  return {
    processes: joinFormation(app, updated.processes, routes, await allocationsOf(deps, ctx, app, updated.processes)),
    appVersion,
    rollout: updated.rollout,
  };
}

/** FormationService: the running shape of an app, its replicas and their logs. */
export function createFormationService(deps: ServiceDeps): ServiceImpl<typeof FormationService> {
  const { scheduler } = deps.peers;
  return {
    async getFormation(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      const least = parseAppVersion(checks, "min_app_version", request.minAppVersion);
      checks.throwIfAny();
      const [, processes] = await Promise.all([ownedApp(deps, ctx, team, request.app), formationView(deps, ctx, request.app, least)]);
      return { processes };
    },
    async scale(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      const entries = Object.entries(request.replicas);
      if (entries.length === 0) checks.add("replicas", "must name at least one process type, like web=3");
      for (const [processType] of entries) checks.dnsLabel(`replicas[${processType}]`, processType);
      checks.throwIfAny();
      const processes = await ownedFormation(
        deps,
        ctx,
        team,
        request.app,
        entries.map(([processType]) => processType),
      );
      for (const [processType] of entries) checkKnownType(checks, `replicas[${processType}]`, processType, processes);
      checks.throwIfAny();
      const changes = entries.map(([processType, replicas]) => ({ processType, replicas }));
      return changeFormation(deps, ctx, request.app, changes);
    },
    async resize(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      if (request.changes.length === 0) checks.add("changes", "must change at least one process type, like web=standard-2x");
      const seen = new Set<string>();
      request.changes.forEach((change, index) => {
        const field = `changes[${index}]`;
        checks.dnsLabel(`${field}.process_type`, change.processType);
        if (seen.has(change.processType)) checks.add(`${field}.process_type`, `"${change.processType}" is changed twice`);
        seen.add(change.processType);
        const explicit = change.cpuMillis !== undefined || change.memoryMb !== undefined;
        if (change.size === "" && !explicit) checks.add(`${field}.size`, "must name a size, or set cpu_millis or memory_mb");
        if (change.cpuMillis !== undefined && change.cpuMillis < MIN_CPU_MILLIS) {
          checks.add(`${field}.cpu_millis`, `must be at least ${MIN_CPU_MILLIS}, got ${change.cpuMillis}`);
        }
        if (change.memoryMb !== undefined && change.memoryMb < MIN_MEMORY_MB) {
          checks.add(`${field}.memory_mb`, `must be at least ${MIN_MEMORY_MB}, got ${change.memoryMb}`);
        }
      });
      checks.throwIfAny();
      const [processes, sizes] = await Promise.all([
        ownedFormation(
          deps,
          ctx,
          team,
          request.app,
          request.changes.map((change) => change.processType),
        ),
        scheduler.listPodSizes({}, callOptions(deps, ctx)),
      ]);
      request.changes.forEach((change, index) => {
        checkKnownType(checks, `changes[${index}].process_type`, change.processType, processes);
        if (change.size !== "" && !sizes.sizes.some((size) => size.name === change.size)) {
          const known = sizes.sizes.map((size) => size.name).join(", ");
          checks.add(`changes[${index}].size`, `unknown size "${change.size}" (sizes: ${known})`);
        }
      });
      checks.throwIfAny();
      const changes = request.changes.map((change): MessageInitShape<typeof FormationChangeSchema> => {
        const formationChange: MessageInitShape<typeof FormationChangeSchema> = { processType: change.processType };
        if (change.size !== "") formationChange.size = change.size;
        if (change.cpuMillis !== undefined) formationChange.cpuMillis = change.cpuMillis;
        if (change.memoryMb !== undefined) formationChange.memoryMb = change.memoryMb;
        // A size alone means "this size's resources", as `pods:type` promises.
        formationChange.clearResourceOverrides = change.cpuMillis === undefined && change.memoryMb === undefined;
        return formationChange;
      });
      return changeFormation(deps, ctx, request.app, changes);
    },
    async listPodSizes(_request, ctx) {
      callerOf(ctx);
      const { sizes } = await scheduler.listPodSizes({}, callOptions(deps, ctx));
      return { sizes };
    },
    async setAutoscale(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      const rule = request.rule;
      if (!rule) checks.add("rule", "is required");
      else {
        checks.dnsLabel("rule.process_type", rule.processType);
        if (rule.minReplicas < 1) checks.add("rule.min_replicas", `must be at least 1, got ${rule.minReplicas}`);
        if (rule.maxReplicas < rule.minReplicas) {
          checks.add("rule.max_replicas", `must be at least min_replicas (${rule.minReplicas}), got ${rule.maxReplicas}`);
        }
        if (rule.targetCpuPercent < 1 || rule.targetCpuPercent > 100) {
          checks.add("rule.target_cpu_percent", `must be between 1 and 100, got ${rule.targetCpuPercent}`);
        }
      }
      checks.throwIfAny();
      const processes = await ownedFormation(deps, ctx, team, request.app, [rule!.processType]);
      checkKnownType(checks, "rule.process_type", rule!.processType, processes);
      checks.throwIfAny();
      const response = await scheduler.setAutoscale({ app: request.app, rule }, callOptions(deps, ctx));
      return { rule: response.rule, appVersion: wroteApp(deps, request.app, response.appVersion) };
    },
    async listAutoscale(request, ctx) {
      const response = await readOwnedApp(deps, ctx, request.app, (options) => scheduler.listAutoscale({ app: request.app }, options));
      return { rules: response.rules };
    },
    async unsetAutoscale(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.dnsLabel("process_type", request.processType);
      });
      const response = await scheduler.unsetAutoscale({ app: request.app, processType: request.processType }, callOptions(deps, ctx));
      return { appVersion: wroteApp(deps, request.app, response.appVersion) };
    },
    async listReplicas(request, ctx) {
      const response = await readOwnedApp(
        deps,
        ctx,
        request.app,
        (options) => scheduler.listReplicas({ app: request.app, processType: request.processType }, options),
        (checks) => {
          if (request.processType !== "") checks.dnsLabel("process_type", request.processType);
        },
      );
      return { replicas: response.replicas };
    },
    async restartProcess(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      checks.dnsLabel("process_type", request.processType);
      checks.throwIfAny();
      const processes = await ownedFormation(deps, ctx, team, request.app, [request.processType]);
      checkKnownType(checks, "process_type", request.processType, processes);
      checks.throwIfAny();
      const response = await scheduler.restartProcess({ app: request.app, processType: request.processType }, callOptions(deps, ctx));
      return { rollout: response.rollout, appVersion: wroteApp(deps, request.app, response.appVersion) };
    },
    async deleteReplica(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.required("replica", request.replica, MAX_REPLICA_NAME);
      });
      await scheduler.deleteReplica({ app: request.app, replica: request.replica }, callOptions(deps, ctx));
      return {};
    },
    async *streamLogs(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => {
        if (request.processType !== "") checks.dnsLabel("process_type", request.processType);
        checks.maxLength("replica", request.replica, MAX_REPLICA_NAME);
        if (request.tailLines > MAX_TAIL_LINES) checks.add("tail_lines", `must be at most ${MAX_TAIL_LINES}, got ${request.tailLines}`);
      });
      const lines = scheduler.streamLogs(
        { app: request.app, processType: request.processType, replica: request.replica, tailLines: request.tailLines, follow: request.follow },
        streamCall(ctx),
      );
      for await (const { line } of lines) yield { line };
    },
  };
}
