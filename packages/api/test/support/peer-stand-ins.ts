import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { HandlerContext, Interceptor } from "@connectrpc/connect";
import { alreadyExists, notFound, parseProcfile, routeHostname, routingClassOf, servePartial } from "@berth/kit";
import { RouterService } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { RouteSchema } from "@berth/proto/type/v1/network";
import type { Route } from "@berth/proto/type/v1/network";
import { AutoscaleRuleSchema, ProcessFormationSchema, RoutingClass } from "@berth/proto/type/v1/process";
import type { AutoscaleRule, ProcessFormation } from "@berth/proto/type/v1/process";
import { AppSchema, ReleaseSchema, ReleaseStatus, RolloutEventKind, RolloutSchema, RolloutState } from "@berth/proto/type/v1/release";
import type { App, Release, Rollout } from "@berth/proto/type/v1/release";

// Minimal in-memory stand-ins for the scheduler and router, implementing only
// the RPCs the API's tests call, until the real services land in their packages.

/** Records the methods a stand-in was called with, in order. */
export interface CallLog {
  readonly calls: string[];
  readonly interceptor: Interceptor;
}

/** Every peer call of a test, across stand-ins, as "scheduler.GetApp". */
export type Timeline = string[];

// The API's read model opens these on its own, not on behalf of a caller; the stand-ins answer them UNIMPLEMENTED.
const READ_MODEL_STREAMS = new Set(["WatchApps", "WatchRoutes"]);

function createCallLog(peer: string, timeline: Timeline): CallLog {
  const calls: string[] = [];
  return {
    calls,
    interceptor: (next) => (request) => {
      if (READ_MODEL_STREAMS.has(request.method.name)) return next(request);
      calls.push(request.method.name);
      timeline.push(`${peer}.${request.method.name}`);
      return next(request);
    },
  };
}

const READ_ONLY = /^(Get|List|Watch|Stream)/;

/** The methods of a call log that change something. */
export function mutatingCalls(log: CallLog): string[] {
  return log.calls.filter((name) => !READ_ONLY.test(name));
}

/** The Procfile every stand-in app starts with. */
export const STAND_IN_TYPES = ["web", "admin-web", "worker", "api-tcp"];

interface AppState {
  app: App;
  processes: ProcessFormation[];
  rules: AutoscaleRule[];
  releases: Release[];
  rollouts: Rollout[];
  config: Record<string, string>;
}

/** A scheduler stand-in: apps with a fixed formation, releases that succeed at once, logs of two lines. */
export function createSchedulerStandIn(timeline: Timeline = []) {
  const log = createCallLog("scheduler", timeline);
  /** Set by a test to hold GetFormation calls (to watch deadlines and cancellation arrive). */
  const hooks: { getFormation?: (ctx: HandlerContext) => Promise<void> } = {};
  const apps = new Map<string, AppState>();
  const requestIds = new Map<string, unknown>();
  const uploads = new Map<string, { app: string; size: bigint; received: bigint }>();
  const state = (name: string) => {
    const found = apps.get(name);
    if (!found) throw notFound(`app ${name} not found`);
    return found;
  };
  const once = <T>(requestId: string, make: () => T): T => {
    if (requestId !== "" && requestIds.has(requestId)) return requestIds.get(requestId) as T;
    const result = make();
    if (requestId !== "") requestIds.set(requestId, result);
    return result;
  };
  const release = (s: AppState, description: string, content: Pick<MessageInitShape<typeof ReleaseSchema>, "artifact" | "processes"> = {}) => {
    const version = s.releases.length + 1;
    const made = create(ReleaseSchema, { app: s.app.name, version, description, status: ReleaseStatus.SUCCEEDED, config: { ...s.config }, ...content });
    const rollout = create(RolloutSchema, {
      id: `rollout-${s.app.name}-${version}`,
      app: s.app.name,
      releaseVersion: version,
      previousReleaseVersion: version - 1,
      state: RolloutState.SUCCEEDED,
    });
    s.releases.push(made);
    s.rollouts.push(rollout);
    s.app.currentReleaseVersion = version;
    return { release: made, rollout };
  };
  const registration = servePartial(SchedulerService, {
    createApp(request) {
      return once(request.requestId, () => {
        if (apps.has(request.name)) throw alreadyExists(`app ${request.name} already exists`);
        const app = create(AppSchema, { name: request.name, team: request.team, createdAt: timestampNow() });
        const processes = STAND_IN_TYPES.map((processType) =>
          create(ProcessFormationSchema, {
            processType,
            routingClass: routingClassOf(processType),
            replicas: processType === "web" ? 1 : 0,
            size: "standard-1x",
          }),
        );
        apps.set(request.name, { app, processes, rules: [], releases: [], rollouts: [], config: {} });
        return { app };
      });
    },
    getApp: (request) => ({ app: state(request.name).app }),
    listApps: (request) => ({ apps: [...apps.values()].map((s) => s.app).filter((app) => request.team === "" || app.team === request.team) }),
    deleteApp(request) {
      state(request.name);
      apps.delete(request.name);
      return {};
    },
    async getFormation(request, ctx) {
      await hooks.getFormation?.(ctx);
      return { processes: state(request.app).processes };
    },
    updateFormation(request) {
      const s = state(request.app);
      for (const change of request.changes) {
        const process = s.processes.find((p) => p.processType === change.processType)!;
        if (change.replicas !== undefined) process.replicas = change.replicas;
        if (change.size !== undefined) process.size = change.size;
      }
      return { processes: s.processes };
    },
    listPodSizes: () => ({
      sizes: [
        { name: "standard-1x", cpuMillis: 250, memoryMb: 512 },
        { name: "standard-2x", cpuMillis: 500, memoryMb: 1024 },
      ],
    }),
    setAutoscale(request) {
      const s = state(request.app);
      const rule = create(AutoscaleRuleSchema, request.rule);
      s.rules = [...s.rules.filter((r) => r.processType !== rule.processType), rule];
      return { rule };
    },
    listAutoscale: (request) => ({ rules: state(request.app).rules }),
    unsetAutoscale(request) {
      const s = state(request.app);
      s.rules = s.rules.filter((r) => r.processType !== request.processType);
      return {};
    },
    beginSourceUpload(request) {
      state(request.app);
      const uploadId = `upload-${uploads.size + 1}`;
      uploads.set(uploadId, { app: request.app, size: request.sizeBytes, received: 0n });
      return { uploadId, maxChunkBytes: 4 };
    },
    uploadSourceChunk(request) {
      const upload = uploads.get(request.uploadId);
      if (!upload) throw notFound(`upload ${request.uploadId} not found`);
      upload.received += BigInt(request.data.length);
      return { receivedBytes: upload.received, complete: upload.received === upload.size };
    },
    createRelease(request) {
      return once(request.requestId, () => {
        const procfile = parseProcfile(request.procfile);
        return release(state(request.app), request.description, {
          artifact: request.artifact,
          processes: procfile.ok ? procfile.processes.map(({ processType, command }) => ({ processType, command })) : [],
        });
      });
    },
    listReleases: (request) => ({ releases: state(request.app).releases }),
    getRelease(request) {
      const found = state(request.app).releases.find((r) => r.version === request.version);
      if (!found) throw notFound(`release v${request.version} not found`);
      return { release: found };
    },
    rollback(request) {
      return once(request.requestId, () => release(state(request.app), `Rollback to v${request.version}`));
    },
    getConfig: (request) => ({ config: state(request.app).config }),
    updateConfig(request) {
      return once(request.requestId, () => {
        const s = state(request.app);
        Object.assign(s.config, request.set);
        for (const key of request.unset) delete s.config[key];
        return release(s, "Config change");
      });
    },
    updateHealthCheck(request) {
      return once(request.requestId, () => {
        const s = state(request.app);
        const process = s.processes.find((p) => p.processType === request.processType);
        return { ...release(s, request.reset ? "Health check reset" : "Health check change"), process };
      });
    },
    async *watchRollout(request) {
      const rollout = state(request.app).rollouts.find((r) => r.id === request.rolloutId);
      if (!rollout) throw notFound(`rollout ${request.rolloutId} not found`);
      const kinds = [RolloutEventKind.ROLLOUT_STARTED, RolloutEventKind.REPLICA_HEALTHY, RolloutEventKind.ROLLOUT_SUCCEEDED];
      for (const [index, kind] of kinds.entries()) {
        if (BigInt(index + 1) <= request.fromSequence) continue;
        yield { event: { rolloutId: rollout.id, sequence: BigInt(index + 1), kind, app: request.app }, rollout };
      }
    },
    listReplicas: (request) => ({
      replicas: state(request.app)
        .processes.filter((p) => p.replicas > 0 && (request.processType === "" || p.processType === request.processType))
        .map((p) => ({ name: `${request.app}-${p.processType}-1`, app: request.app, processType: p.processType, index: 1 })),
    }),
    restartProcess: (request) => ({ rollout: { id: "restart-1", app: request.app, processTypes: [request.processType] } }),
    deleteReplica(request) {
      state(request.app);
      return {};
    },
    async *runCommand(request, ctx) {
      const s = state(request.app);
      const replicas = s.processes.filter((p) => p.replicas > 0).map((p) => `${request.app}-${p.processType}-1`);
      if (request.replica !== "" && !replicas.includes(request.replica)) throw notFound(`app "${request.app}" has no replica "${request.replica}"`);
      yield { output: { output: { case: "started", value: request.replica || `${request.app}-run-1` } } };
      // "sleep" runs until its caller goes away, as a long command would.
      if (request.command.startsWith("sleep")) {
        await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new ConnectError("the caller went away", Code.Canceled))));
      }
      yield { output: { output: { case: "exit", value: { code: 0 } } } };
    },
    async *streamLogs(request) {
      state(request.app);
      for (const text of ["first line", "second line"]) {
        yield { line: { app: request.app, processType: request.processType || "web", replica: `${request.app}-web-1`, text } };
      }
    },
  });
  return { registration, log, apps, hooks };
}

/** A router stand-in: a platform route per web type of the apps it is told about, custom domains on request. */
export function createRouterStandIn(timeline: Timeline = [], platformDomain = "berth.localhost") {
  const log = createCallLog("router", timeline);
  const domains: Route[] = [];
  const webTypes = new Map<string, string[]>();
  const platformRoutes = (app: string) =>
    (webTypes.get(app) ?? []).map((processType) => {
      const hostname = routeHostname(app, processType, platformDomain)!;
      return create(RouteSchema, { hostname, app, processType, url: `https://${hostname}`, customDomain: false });
    });
  const registration = servePartial(RouterService, {
    listRoutes: (request) => ({ routes: [...platformRoutes(request.app), ...domains.filter((d) => d.app === request.app)] }),
    addDomain(request) {
      if (domains.some((d) => d.hostname === request.hostname)) throw alreadyExists(`domain ${request.hostname} is taken`);
      const route = create(RouteSchema, {
        hostname: request.hostname,
        app: request.app,
        processType: request.processType,
        url: `https://${request.hostname}`,
        customDomain: true,
      });
      domains.push(route);
      return { route };
    },
    removeDomain(request) {
      const index = domains.findIndex((d) => d.hostname === request.hostname && d.app === request.app);
      if (index < 0) throw notFound(`domain ${request.hostname} not found`);
      domains.splice(index, 1);
      return {};
    },
    deleteAppRoutes(request) {
      webTypes.delete(request.app);
      for (let i = domains.length - 1; i >= 0; i--) if (domains[i]!.app === request.app) domains.splice(i, 1);
      return {};
    },
  });
  return {
    registration,
    log,
    /** Tells the stand-in which web types an app has (the real router learns it from the scheduler). */
    knowApp(app: string) {
      webTypes.set(
        app,
        STAND_IN_TYPES.filter((type) => routingClassOf(type) === RoutingClass.WEB),
      );
    },
  };
}
