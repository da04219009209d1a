import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Database, FieldViolation, Logger, Queryable } from "@berth/kit";
import { alreadyExists, dnsLabelProblem, failedPrecondition, invalidArgument, invalidArguments, notFound, parseProcfile, routingClassOf } from "@berth/kit";
import {
  AppProcessesSchema,
  CreateAppResponseSchema,
  CreateReleaseResponseSchema,
  RollbackResponseSchema,
  type SchedulerService,
  UpdateConfigResponseSchema,
} from "@berth/proto/scheduler/v1/scheduler";
import type { AppProcesses } from "@berth/proto/scheduler/v1/scheduler";
import { LogLineSchema, RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { SchedulerConfig } from "./config.js";
import type { EndpointHub } from "./endpoints.js";
import type { LogEntry, LogSource } from "./engine/engine.js";
import { applyFormationPatch, validateAutoscaleRule, validateFormationChanges } from "./formation.js";
import type { FormationContext } from "./formation.js";
import { POD_SIZES } from "./pod-sizes.js";
import type { AppController } from "./reconcile/app-controller.js";
import { appKey, rolloutKey } from "./change-feed.js";
import type { ChangeFeed } from "./change-feed.js";
import { recordRolloutEvent } from "./reconcile/rollout-events.js";
import { createReleaseAndRollout, newRolloutId, requireNoRollout } from "./release-creation.js";
import type { ReleaseContent } from "./release-creation.js";
import type { SourceUploads } from "./source-uploads.js";
import { findApp, insertApp, listApps, markAppDeleting, setAppConfig } from "./store/apps.js";
import type { AppRecord } from "./store/apps.js";
import {
  deleteAutoscaleRule,
  ensureFormationEntry,
  listAutoscaleRules,
  listFormation,
  saveFormationEntry,
  upsertAutoscaleRule,
} from "./store/formation.js";
import { findRelease, listReleases } from "./store/releases.js";
import type { ReleaseRecord } from "./store/releases.js";
import { findReplica, listReplicas, setRetirePhase } from "./store/replicas.js";
import { findRequestResponse, saveRequestResponse } from "./store/request-ids.js";
import { findActiveRollout, findRollout, insertRollout, listRolloutEvents, listRollouts, setProgressDeadline } from "./store/rollouts.js";
import { DEFAULT_POD_SIZE } from "./pod-sizes.js";
import { appMessage, formationView, releaseMessage, replicaMessage, rolloutEventMessage, rolloutMessage } from "./views.js";

/** What the scheduler's handlers work with. */
export interface SchedulerServiceDeps {
  db: Database;
  config: SchedulerConfig;
  controller: AppController;
  endpoints: EndpointHub;
  logs: LogSource;
  feed: ChangeFeed;
  uploads: SourceUploads;
  logger: Logger;
}

const MAX_REQUEST_ID = 128;
const MAX_DESCRIPTION = 1000;
const MAX_PROCFILE_BYTES = 64 * 1024;
const MAX_CONFIG_VALUE_BYTES = 32 * 1024;
const MAX_TAIL_LINES = 10_000;
const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
const IMAGE_REFERENCE = /^[a-z0-9]+([._\-/:@][A-Za-z0-9_.-]+)*$/;
const DEFAULT_PROCESSES = [{ processType: "web", command: "" }];

function checkName(violations: FieldViolation[], field: string, value: string): void {
  const problem = dnsLabelProblem(value);
  if (problem !== undefined) violations.push({ field, description: problem });
}

function checkRequestId(violations: FieldViolation[], requestId: string): void {
  if (requestId.length > MAX_REQUEST_ID) violations.push({ field: "request_id", description: `must be at most ${MAX_REQUEST_ID} characters` });
}

function throwIfAny(violations: FieldViolation[]): void {
  if (violations.length > 0) throw invalidArguments(violations);
}

/** The handlers of SchedulerService. */
export function createSchedulerService(deps: SchedulerServiceDeps): ServiceImpl<typeof SchedulerService> {
  const { db, config, controller, endpoints, feed, uploads } = deps;

  async function requireApp(q: Queryable, name: string, forUpdate = false): Promise<AppRecord> {
    const problem = dnsLabelProblem(name);
    if (problem !== undefined) throw invalidArgument("app", problem);
    const app = await findApp(q, name, forUpdate);
    if (app === undefined) throw notFound(`app "${name}" not found`);
    return app;
  }

  /** Runs `fn` once per request id: a retry gets the first response back. */
  async function once<S extends DescMessage>(scope: string, requestId: string, schema: S, fn: (tx: Queryable) => Promise<MessageShape<S>>): Promise<MessageShape<S>> {
    const replay = async () => {
      const saved = requestId === "" ? undefined : await findRequestResponse(db, scope, requestId);
      return saved && fromBinary(schema, saved);
    };
    const earlier = await replay();
    if (earlier !== undefined) return earlier;
    try {
      return await db.transaction(async (tx) => {
        const response = await fn(tx);
        if (requestId !== "") await saveRequestResponse(tx, scope, requestId, toBinary(schema, response));
        return response;
      });
    } catch (error) {
      // A concurrent retry with the same id committed first: answer as it did.
      if ((error as { code?: string }).code === "23505") {
        const raced = await replay();
        if (raced !== undefined) return raced;
      }
      throw error;
    }
  }

  /** The release whose processes an app has now: the one rolling out, else the one serving. */
  async function activeRelease(q: Queryable, app: AppRecord): Promise<ReleaseRecord | undefined> {
    const rollout = await findActiveRollout(q, app.name);
    const version = rollout !== undefined && rollout.processTypes.length === 0 ? rollout.releaseVersion : app.currentReleaseVersion;
    return version > 0 ? findRelease(q, app.name, version) : undefined;
  }

  async function formationOf(q: Queryable, app: AppRecord) {
    const release = await activeRelease(q, app);
    return formationView({
      app: app.name,
      processes: release?.processes ?? DEFAULT_PROCESSES,
      formation: await listFormation(q, app.name),
      rules: await listAutoscaleRules(q, app.name),
      replicas: await listReplicas(q, app.name),
      healthDefaults: config.health,
    });
  }

  async function formationContext(q: Queryable, app: AppRecord): Promise<FormationContext> {
    const release = await activeRelease(q, app);
    const processes = release?.processes ?? DEFAULT_PROCESSES;
    const rules = await listAutoscaleRules(q, app.name);
    return {
      types: new Map(processes.map((process) => [process.processType, routingClassOf(process.processType)])),
      rules: new Map(rules.map((rule) => [rule.processType, { ...rule, $typeName: "berth.type.v1.AutoscaleRule" as const }])),
      maxReplicas: config.maxReplicasPerType,
    };
  }

  async function appProcesses(name: string): Promise<AppProcesses> {
    const app = await findApp(db, name);
    if (app === undefined) return create(AppProcessesSchema, { app: { name }, deleted: true });
    const rollout = await findActiveRollout(db, name);
    return create(AppProcessesSchema, { app: appMessage(app, rollout?.id ?? ""), processes: await formationOf(db, app) });
  }

  function afterChange(app: string): void {
    feed.notify(appKey(app));
    controller.enqueue(app);
  }

  /** Checks a Procfile, naming each bad line, and the names it makes. */
  function processesFrom(app: string, procfile: string): ReleaseContent["processes"] {
    if (procfile.length > MAX_PROCFILE_BYTES) throw invalidArgument("procfile", `must be at most ${MAX_PROCFILE_BYTES} bytes`);
    const parsed = parseProcfile(procfile);
    if (!parsed.ok) throw invalidArguments(parsed.problems.map((description) => ({ field: "procfile", description })));
    const violations: FieldViolation[] = [];
    for (const process of parsed.processes) {
      if (process.routingClass === RoutingClass.TCP && `${app}-${process.processType}`.length > 63) {
        violations.push({ field: "procfile", description: `"${app}-${process.processType}", the internal hostname of "${process.processType}", is longer than 63 characters` });
      }
    }
    throwIfAny(violations);
    return parsed.processes.map(({ processType, command }) => ({ processType, command }));
  }

  function checkConfigChange(set: Record<string, string>, unset: string[]): void {
    const violations: FieldViolation[] = [];
    const keyProblem = (key: string) =>
      !CONFIG_KEY.test(key)
        ? "must be letters, digits and _, not starting with a digit"
        : key === "PORT" || key.startsWith("BERTH_")
          ? "is set by the platform"
          : undefined;
    for (const [key, value] of Object.entries(set)) {
      const problem = keyProblem(key);
      if (problem !== undefined) violations.push({ field: `set[${JSON.stringify(key)}]`, description: problem });
      if (Buffer.byteLength(value) > MAX_CONFIG_VALUE_BYTES) violations.push({ field: `set[${JSON.stringify(key)}]`, description: `value must be at most ${MAX_CONFIG_VALUE_BYTES} bytes` });
    }
    unset.forEach((key, index) => {
      const problem = keyProblem(key);
      if (problem !== undefined) violations.push({ field: `unset[${index}]`, description: problem });
      if (key in set) violations.push({ field: `unset[${index}]`, description: `"${key}" is also set in the same request` });
    });
    throwIfAny(violations);
  }

  function logLine(entry: LogEntry) {
    return {
      line: create(LogLineSchema, {
        time: timestampFromDate(entry.time),
        app: entry.app,
        processType: entry.processType,
        replica: entry.replica,
        releaseVersion: entry.releaseVersion,
        stream: entry.stream,
        text: entry.text,
      }),
    };
  }

  return {
    async createApp(request) {
      const violations: FieldViolation[] = [];
      checkName(violations, "team", request.team);
      checkName(violations, "name", request.name);
      checkRequestId(violations, request.requestId);
      throwIfAny(violations);
      const response = await once(`CreateApp:${request.team}`, request.requestId, CreateAppResponseSchema, async (tx) => {
        const app = await insertApp(tx, request.name, request.team);
        if (app === undefined) throw alreadyExists(`app "${request.name}" already exists`);
        await ensureFormationEntry(tx, app.name, "web", 1, DEFAULT_POD_SIZE);
        return create(CreateAppResponseSchema, { app: appMessage(app, "") });
      });
      feed.notify(appKey(request.name));
      return response;
    },

    async getApp(request) {
      const app = await requireApp(db, request.name);
      const rollout = await findActiveRollout(db, app.name);
      return { app: appMessage(app, rollout?.id ?? "") };
    },

    async listApps(request) {
      if (request.team !== "") {
        const problem = dnsLabelProblem(request.team);
        if (problem !== undefined) throw invalidArgument("team", problem);
      }
      const apps = await listApps(db, request.team);
      return { apps: await Promise.all(apps.map(async (app) => appMessage(app, (await findActiveRollout(db, app.name))?.id ?? ""))) };
    },

    async deleteApp(request, ctx) {
      await requireApp(db, request.name);
      await markAppDeleting(db, request.name);
      afterChange(request.name);
      for (;;) {
        const version = feed.version(appKey(request.name));
        if ((await findApp(db, request.name)) === undefined) return {};
        await feed.changedSince(appKey(request.name), version, ctx.signal);
        if (ctx.signal.aborted) throw new ConnectError(`app "${request.name}" is still stopping; its deletion goes on`, Code.DeadlineExceeded);
      }
    },

    async beginSourceUpload(request) {
      const app = await requireApp(db, request.app);
      if (app.deleting) throw failedPrecondition(`app "${app.name}" is being deleted`);
      return uploads.begin(app.name, Number(request.sizeBytes), request.sha256);
    },

    async uploadSourceChunk(request) {
      const { receivedBytes, complete } = await uploads.chunk(request.uploadId, Number(request.offset), request.data);
      return { receivedBytes: BigInt(receivedBytes), complete };
    },

    async createRelease(request) {
      const violations: FieldViolation[] = [];
      checkRequestId(violations, request.requestId);
      if (request.description.length > MAX_DESCRIPTION) violations.push({ field: "description", description: `must be at most ${MAX_DESCRIPTION} characters` });
      const source = request.artifact?.source;
      if (config.engine === "local" && source?.case !== "sourceUploadId") {
        violations.push({ field: "artifact.source_upload_id", description: "the local engine runs source archives: upload one and name it here" });
      }
      if (config.engine === "kubernetes" && (source?.case !== "image" || !IMAGE_REFERENCE.test(source.value))) {
        violations.push({ field: "artifact.image", description: "the kubernetes engine runs container images: give an image reference" });
      }
      throwIfAny(violations);
      const app = await requireApp(db, request.app);
      let sourceDir = "";
      let digest = request.artifact?.digest ?? "";
      let procfile = request.procfile;
      if (source?.case === "sourceUploadId") {
        const upload = await uploads.completed(app.name, source.value, "artifact.source_upload_id");
        sourceDir = upload.sourceDir;
        digest = upload.sha256;
        if (procfile.trim() === "") {
          procfile = await readFile(join(sourceDir, "Procfile"), "utf8").catch(() => {
            throw invalidArgument("procfile", "is empty and the source archive has no Procfile");
          });
        }
      }
      const processes = procfile.trim() === "" ? DEFAULT_PROCESSES : processesFrom(app.name, procfile);
      const artifact = source?.case === "image" ? { image: source.value, digest } : { sourceUploadId: source?.value ?? "", digest };
      const response = await once(`CreateRelease:${app.name}`, request.requestId, CreateReleaseResponseSchema, async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        const created = await createReleaseAndRollout(
          tx,
          locked,
          { artifact, sourceDir, processes, config: locked.config, description: request.description, rollbackOfVersion: 0 },
          { runReleasePhase: true },
        );
        return create(CreateReleaseResponseSchema, { release: releaseMessage(created.release, config.health), rollout: rolloutMessage(created.rollout) });
      });
      afterChange(app.name);
      return response;
    },

    async getRelease(request) {
      const app = await requireApp(db, request.app);
      const release = await findRelease(db, app.name, request.version);
      if (release === undefined) throw notFound(`app "${app.name}" has no release v${request.version}`);
      return { release: releaseMessage(release, config.health) };
    },

    async listReleases(request) {
      const app = await requireApp(db, request.app);
      return { releases: (await listReleases(db, app.name)).map((release) => releaseMessage(release, config.health)) };
    },

    async rollback(request) {
      const violations: FieldViolation[] = [];
      checkRequestId(violations, request.requestId);
      throwIfAny(violations);
      const app = await requireApp(db, request.app);
      const response = await once(`Rollback:${app.name}`, request.requestId, RollbackResponseSchema, async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        const releases = await listReleases(tx, app.name);
        const target =
          request.version === 0
            ? releases.find((release) => release.version < locked.currentReleaseVersion && release.status === "succeeded")
            : releases.find((release) => release.version === request.version);
        if (target === undefined) {
          if (request.version === 0) throw failedPrecondition(`app "${app.name}" has no earlier release that served to roll back to`);
          throw notFound(`app "${app.name}" has no release v${request.version}`);
        }
        if (target.status === "failed" || target.status === "pending") {
          throw failedPrecondition(`v${target.version} never served (it ${target.status === "failed" ? "failed" : "is pending"}); roll back to a release that did`);
        }
        // Like Heroku's, a rollback does not run the release phase again.
        const created = await createReleaseAndRollout(
          tx,
          locked,
          {
            artifact: target.artifact,
            sourceDir: target.sourceDir,
            processes: target.processes,
            config: target.config,
            description: `Rollback to v${target.version}`,
            rollbackOfVersion: target.version,
          },
          { runReleasePhase: false },
        );
        await setAppConfig(tx, app.name, target.config);
        return create(RollbackResponseSchema, { release: releaseMessage(created.release, config.health), rollout: rolloutMessage(created.rollout) });
      });
      afterChange(app.name);
      return response;
    },

    async getConfig(request) {
      const app = await requireApp(db, request.app);
      return { config: app.config };
    },

    async updateConfig(request) {
      const violations: FieldViolation[] = [];
      checkRequestId(violations, request.requestId);
      throwIfAny(violations);
      checkConfigChange(request.set, request.unset);
      const app = await requireApp(db, request.app);
      const response = await once(`UpdateConfig:${app.name}`, request.requestId, UpdateConfigResponseSchema, async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        const next = { ...locked.config, ...request.set };
        for (const key of request.unset) delete next[key];
        const serving = locked.currentReleaseVersion > 0 ? await findRelease(tx, app.name, locked.currentReleaseVersion) : undefined;
        if (serving === undefined) {
          await requireNoRollout(tx, locked);
          await setAppConfig(tx, app.name, next);
          return create(UpdateConfigResponseSchema, {});
        }
        const keys = [...Object.keys(request.set), ...request.unset.map((key) => `-${key}`)].join(", ");
        const created = await createReleaseAndRollout(
          tx,
          locked,
          { artifact: serving.artifact, sourceDir: serving.sourceDir, processes: serving.processes, config: next, description: `Config change: ${keys}`, rollbackOfVersion: 0 },
          { runReleasePhase: true },
        );
        await setAppConfig(tx, app.name, next);
        return create(UpdateConfigResponseSchema, { release: releaseMessage(created.release, config.health), rollout: rolloutMessage(created.rollout) });
      });
      afterChange(app.name);
      return response;
    },

    async getFormation(request) {
      const app = await requireApp(db, request.app);
      return { processes: await formationOf(db, app) };
    },

    async updateFormation(request) {
      const app = await requireApp(db, request.app);
      const patches = validateFormationChanges(request.changes, await formationContext(db, app));
      const processes = await db.transaction(async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        const entries = new Map((await listFormation(tx, app.name)).map((entry) => [entry.processType, entry]));
        for (const patch of patches) {
          const entry = entries.get(patch.processType);
          if (entry === undefined) throw failedPrecondition(`"${patch.processType}" has no formation yet`);
          await saveFormationEntry(tx, app.name, applyFormationPatch(entry, patch));
        }
        return formationOf(tx, locked);
      });
      afterChange(app.name);
      return { processes };
    },

    async listPodSizes() {
      return { sizes: [...POD_SIZES] };
    },

    async setAutoscale(request) {
      const app = await requireApp(db, request.app);
      const rule = validateAutoscaleRule(request.rule, await formationContext(db, app));
      await db.transaction(async (tx) => {
        await requireApp(tx, app.name, true);
        await upsertAutoscaleRule(tx, app.name, rule);
        const entry = (await listFormation(tx, app.name)).find((candidate) => candidate.processType === rule.processType);
        if (entry !== undefined) {
          const replicas = Math.min(Math.max(entry.replicas, rule.minReplicas), rule.maxReplicas);
          if (replicas !== entry.replicas) await saveFormationEntry(tx, app.name, { ...entry, replicas });
        }
      });
      afterChange(app.name);
      return { rule };
    },

    async listAutoscale(request) {
      const app = await requireApp(db, request.app);
      return { rules: (await listAutoscaleRules(db, app.name)).map((rule) => ({ ...rule })) };
    },

    async unsetAutoscale(request) {
      const app = await requireApp(db, request.app);
      if (!(await deleteAutoscaleRule(db, app.name, request.processType))) {
        throw notFound(`"${request.processType}" of app "${app.name}" has no autoscale rule`);
      }
      afterChange(app.name);
      return {};
    },

    async listReplicas(request) {
      const app = await requireApp(db, request.app);
      const replicas = await listReplicas(db, app.name);
      return { replicas: replicas.filter((replica) => request.processType === "" || replica.processType === request.processType).map(replicaMessage) };
    },

    async restartProcess(request) {
      const app = await requireApp(db, request.app);
      const context = await formationContext(db, app);
      const routingClass = context.types.get(request.processType);
      if (routingClass === undefined || routingClass === RoutingClass.RELEASE) {
        throw invalidArgument("process_type", `app "${app.name}" has no process type "${request.processType}" to restart`);
      }
      if (app.currentReleaseVersion === 0) throw failedPrecondition(`app "${app.name}" has no release running`);
      const rollout = await db.transaction(async (tx) => {
        const locked = await requireApp(tx, app.name, true);
        await requireNoRollout(tx, locked);
        const entry = (await listFormation(tx, app.name)).find((candidate) => candidate.processType === request.processType);
        if (entry === undefined) throw failedPrecondition(`"${request.processType}" has no formation yet`);
        await saveFormationEntry(tx, app.name, { ...entry, restartGeneration: entry.restartGeneration + 1 });
        const created = await insertRollout(tx, {
          id: newRolloutId(),
          app: app.name,
          releaseVersion: locked.currentReleaseVersion,
          previousReleaseVersion: locked.currentReleaseVersion,
          state: "rolling",
          processTypes: [request.processType],
        });
        if (created === undefined) throw failedPrecondition(`app "${app.name}" has a rollout under way`);
        await setProgressDeadline(tx, created.id, new Date(Date.now() + config.progressDeadlineMs));
        await recordRolloutEvent(tx, undefined, created.id, RolloutEventKind.ROLLOUT_STARTED, {
          processType: request.processType,
          message: `restarting "${request.processType}"`,
        });
        return created;
      });
      afterChange(app.name);
      return { rollout: rolloutMessage(rollout) };
    },

    async deleteReplica(request) {
      const app = await requireApp(db, request.app);
      const replica = await findReplica(db, request.replica);
      if (replica === undefined || replica.app !== app.name) throw notFound(`app "${app.name}" has no replica "${request.replica}"`);
      if (replica.retirePhase === "") await setRetirePhase(db, replica.name, "unrouted", { reason: "deleted", generation: 0 });
      controller.enqueue(app.name);
      return {};
    },

    async *streamLogs(request, ctx) {
      const app = await requireApp(db, request.app);
      if (request.tailLines > MAX_TAIL_LINES) throw invalidArgument("tail_lines", `must be at most ${MAX_TAIL_LINES}`);
      const filter = { app: app.name, processType: request.processType, replica: request.replica };
      const pending: LogEntry[] = [];
      let wake: (() => void) | undefined;
      const stop = request.follow
        ? deps.logs.follow(filter, (entry) => {
            pending.push(entry);
            wake?.();
          })
        : () => undefined;
      try {
        const tail = deps.logs.tail(filter, request.tailLines);
        const sent = new Set(tail);
        for (const entry of tail) yield logLine(entry);
        if (!request.follow) return;
        const onAbort = () => wake?.();
        ctx.signal.addEventListener("abort", onAbort);
        try {
          while (!ctx.signal.aborted) {
            const entry = pending.shift();
            if (entry === undefined) {
              await new Promise<void>((resolve) => (wake = resolve));
              wake = undefined;
            } else if (!sent.has(entry)) {
              yield logLine(entry);
            }
          }
        } finally {
          ctx.signal.removeEventListener("abort", onAbort);
        }
      } finally {
        stop();
      }
    },

    async getRollout(request) {
      const app = await requireApp(db, request.app);
      const rollout = await findRollout(db, request.rolloutId);
      if (rollout === undefined || rollout.app !== app.name) throw notFound(`app "${app.name}" has no rollout "${request.rolloutId}"`);
      return { rollout: rolloutMessage(rollout) };
    },

    async listRollouts(request) {
      const app = await requireApp(db, request.app);
      const limit = request.limit === 0 ? 20 : Math.min(request.limit, 1000);
      return { rollouts: (await listRollouts(db, app.name, limit)).map(rolloutMessage) };
    },

    async *watchRollout(request, ctx) {
      const app = await requireApp(db, request.app);
      let sequence = Number(request.fromSequence);
      const key = rolloutKey(request.rolloutId);
      for (;;) {
        const version = feed.version(key);
        const events = await listRolloutEvents(db, request.rolloutId, sequence);
        // Read after the events, so that the state sent with the last step is never older than it.
        const rollout = await findRollout(db, request.rolloutId);
        if (rollout === undefined || rollout.app !== app.name) throw notFound(`app "${app.name}" has no rollout "${request.rolloutId}"`);
        for (const event of events) {
          sequence = event.sequence;
          yield { event: rolloutEventMessage(event, rollout), rollout: rolloutMessage(rollout) };
        }
        if (sequence < rollout.lastSequence) continue;
        if (rollout.finishedAt !== null) return;
        await feed.changedSince(key, version, ctx.signal);
        if (ctx.signal.aborted) return;
      }
    },

    watchEndpoints(request, ctx) {
      if (request.consumer === "" || request.consumer.length > 128) throw invalidArgument("consumer", "must name the consumer in 1 to 128 characters");
      return endpoints.watch(request.consumer, ctx.signal);
    },

    async ackEndpoints(request) {
      if (request.consumer === "") throw invalidArgument("consumer", "must not be empty");
      if (request.generation > BigInt(endpoints.generation)) {
        throw invalidArgument("generation", `generation ${request.generation} was never published (the latest is ${endpoints.generation})`);
      }
      await endpoints.ack(request.consumer, Number(request.generation));
      return {};
    },

    async reportDrained(request) {
      if (request.consumer === "") throw invalidArgument("consumer", "must not be empty");
      endpoints.reportDrained(request.consumer, request.replicas);
      return {};
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
        const apps = await listApps(db);
        yield { snapshot: true, apps: await Promise.all(apps.map((app) => appProcesses(app.name))) };
        while (!ctx.signal.aborted) {
          const name = changed.shift();
          if (name === undefined) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          yield { snapshot: false, apps: [await appProcesses(name)] };
        }
      } finally {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
