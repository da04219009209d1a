import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { createFieldChecks, failedPrecondition, invalidArgument, notFound, routingClassOf } from "@berth/kit";
import { UpdateHealthCheckRequestSchema, UpdateHealthCheckResponseSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { CommandOutputSchema, ReplicaDescriptionSchema, RoutingClass } from "@berth/proto/type/v1/process";
import type { CommandOutput } from "@berth/proto/type/v1/process";
import type { CommandEvent, ReleaseTaskSpec } from "../engine/engine.js";
import { replicaSpecFor } from "../engine/local/replica-specs.js";
import { effectiveResources } from "../formation.js";
import { healthOverridesFrom, resolveHealth } from "../health-settings.js";
import type { HealthOverrides } from "../health-settings.js";
import { commandOf, releaseEnvironment } from "../release-commands.js";
import { createReleaseAndRollout, requireNoRollout, sameRelease } from "../release-creation.js";
import { listFormation, saveFormationEntry } from "../store/formation.js";
import { findRelease } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import { findReplica } from "../store/replicas.js";
import type { ReplicaRecord } from "../store/replicas.js";
import { healthCheckMessage, releaseMessage, replicaMessage, rolloutMessage } from "../views.js";
import { formationContext, formationOf, requireApp } from "./app-reads.js";
import { runOnce } from "./idempotency.js";
import { checkRequestId } from "./request-checks.js";
import { afterChange } from "./service-deps.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type ProcessCommandHandlers = Pick<ServiceImpl<typeof SchedulerService>, "updateHealthCheck" | "describeReplica" | "runCommand">;

const MAX_REPLICA_NAME = 253;

/** A health change in words, for the release's description: `path /up, interval 1000 ms`. */
function describeHealthChange(processType: string, overrides: HealthOverrides, reset: boolean): string {
  const parts = Object.entries(overrides).map(([key, value]) =>
    key === "path" ? `path ${value}` : `${key.replace(/Ms$/, "")} ${value}${key.endsWith("Ms") ? " ms" : ""}`,
  );
  if (reset) return `Health check of ${processType} reset to the defaults${parts.length > 0 ? `, then ${parts.join(", ")}` : ""}`;
  return `Health check of ${processType}: ${parts.join(", ") || "unchanged"}`;
}

function outputMessage(event: CommandEvent): CommandOutput {
  if (event.kind === "exit") return create(CommandOutputSchema, { output: { case: "exit", value: { code: event.code ?? -1, reason: event.reason } } });
  return create(CommandOutputSchema, { output: { case: event.kind, value: event.data } });
}

/** The environment variable names a replica runs with: its spec's and what the runtime adds. */
function environmentNames(
  deps: SchedulerServiceDeps,
  release: ReleaseRecord,
  replica: ReplicaRecord,
  formation: Parameters<typeof replicaSpecFor>[2],
): string[] {
  const spec = replicaSpecFor(deps.config, release, formation, replica, "");
  // The runtime tells every replica where to listen; on a cluster the pod gets PORT only.
  const added = deps.config.engine === "kubernetes" ? ["PORT"] : ["HOST", "PORT"];
  return [...new Set([...Object.keys(spec.env), ...added])].sort();
}

/** The handlers of what runs inside an app's processes: health checks, `run`, `ps:exec`, `ps:describe`. */
export function createProcessCommandHandlers(deps: SchedulerServiceDeps): ProcessCommandHandlers {
  const { db, config } = deps;
  const { commands } = deps.engine;
  return {
    async updateHealthCheck(request) {
      const checks = createFieldChecks();
      checkRequestId(checks, request.requestId);
      const parsed = request.health === undefined ? { overrides: {}, violations: [] } : healthOverridesFrom(request.health, "health");
      for (const violation of parsed.violations) checks.add(violation.field, violation.description);
      checks.throwIfAny();
      const app = await requireApp(db, request.app);
      const routingClass = (await formationContext(db, config, app)).types.get(request.processType);
      if (routingClass === undefined || routingClass === RoutingClass.RELEASE) {
        throw invalidArgument("process_type", `app "${app.name}" has no process type "${request.processType}" with a health check`);
      }
      if (parsed.overrides.path !== undefined && routingClass !== RoutingClass.WEB) {
        throw invalidArgument("health.path", `only web processes are probed over HTTP; "${request.processType}" is checked without a path`);
      }
      const response = await runOnce(
        db,
        { scope: `UpdateHealthCheck:${app.name}`, requestSchema: UpdateHealthCheckRequestSchema, request, responseSchema: UpdateHealthCheckResponseSchema },
        async (tx) => {
          const locked = await requireApp(tx, app.name, true);
          await requireNoRollout(tx, locked);
          const entry = (await listFormation(tx, app.name)).find((candidate) => candidate.processType === request.processType);
          if (entry === undefined) throw failedPrecondition(`"${request.processType}" has no formation yet`);
          const health = { ...(request.reset ? {} : entry.health), ...parsed.overrides };
          await saveFormationEntry(tx, app.name, { ...entry, health });
          const serving = locked.currentReleaseVersion > 0 ? await findRelease(tx, app.name, locked.currentReleaseVersion) : undefined;
          const process = (await formationOf(tx, config, locked)).find((candidate) => candidate.processType === request.processType);
          // Before the first deploy there is nothing to roll: the settings apply from then on.
          if (serving === undefined) return create(UpdateHealthCheckResponseSchema, { process });
          // Like a config change, a new release: `releases` says when "healthy" changed.
          const created = await createReleaseAndRollout(
            tx,
            locked,
            sameRelease(serving, { description: describeHealthChange(request.processType, parsed.overrides, request.reset) }),
            { runReleasePhase: false },
          );
          return create(UpdateHealthCheckResponseSchema, {
            release: releaseMessage(created.release, config.health),
            rollout: rolloutMessage(created.rollout),
            process,
          });
        },
      );
      afterChange(deps, app.name);
      return response;
    },

    async describeReplica(request) {
      const app = await requireApp(db, request.app);
      const replica = await findReplica(db, request.replica);
      if (replica === undefined || replica.app !== app.name) throw notFound(`app "${app.name}" has no replica "${request.replica}"`);
      const release = await findRelease(db, app.name, replica.releaseVersion);
      if (release === undefined) throw notFound(`release v${replica.releaseVersion} of app "${app.name}" is gone`);
      const formation = (await listFormation(db, app.name)).find((entry) => entry.processType === replica.processType);
      const routingClass = routingClassOf(replica.processType);
      const size = formation?.size ?? "";
      return {
        description: create(ReplicaDescriptionSchema, {
          replica: replicaMessage(replica),
          command: commandOf(release, replica.processType) ?? "",
          size,
          ...effectiveResources(formation ?? { size, cpuMillis: null, memoryMb: null }),
          health: healthCheckMessage(routingClass, resolveHealth(routingClass, formation?.health ?? {}, config.health)),
          environmentNames: environmentNames(deps, release, replica, formation),
        }),
      };
    },

    async *runCommand(request, ctx) {
      const checks = createFieldChecks();
      checks.shellCommand("command", request.command);
      checks.maxLength("replica", request.replica, MAX_REPLICA_NAME);
      checks.throwIfAny();
      const app = await requireApp(db, request.app);
      let events: AsyncIterable<CommandEvent>;
      if (request.replica !== "") {
        const replica = await findReplica(db, request.replica);
        if (replica === undefined || replica.app !== app.name) throw notFound(`app "${app.name}" has no replica "${request.replica}"`);
        yield { output: { output: { case: "started", value: replica.name } } };
        events = commands.exec(app.name, replica.name, request.command, ctx.signal);
      } else {
        if (app.deleting) throw failedPrecondition(`app "${app.name}" is being deleted`);
        const release = app.currentReleaseVersion > 0 ? await findRelease(db, app.name, app.currentReleaseVersion) : undefined;
        if (release === undefined) throw failedPrecondition(`app "${app.name}" has no release to run a command of yet; deploy first`);
        const task: ReleaseTaskSpec = {
          name: `${app.name}-run-${randomBytes(4).toString("hex")}`,
          app: app.name,
          team: app.team,
          releaseVersion: release.version,
          command: request.command,
          workDir: release.sourceDir,
          env: releaseEnvironment(release, "run"),
          timeoutMs: config.commandTimeoutMs,
        };
        yield { output: { output: { case: "started", value: task.name } } };
        events = commands.runOneOff(release, task, ctx.signal);
      }
      for await (const event of events) yield { output: outputMessage(event) };
    },
  };
}
