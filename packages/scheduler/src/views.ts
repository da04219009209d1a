import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { internalHostname, routingClassOf } from "@berth/kit";
import {
  AutoscaleDecisionSchema,
  AutoscaleRuleSchema,
  HealthCheckSchema,
  ProcessFormationSchema,
  ReplicaSchema,
  RoutingClass,
} from "@berth/proto/type/v1/process";
import type { HealthCheck, ProcessFormation, Replica } from "@berth/proto/type/v1/process";
import {
  AppSchema,
  ArtifactSchema,
  CanarySchema,
  CanaryState,
  CanaryTrafficState,
  ProcessDefinitionSchema,
  ReleaseSchema,
  ReleaseStatus,
  RolloutEventKind,
  RolloutEventSchema,
  RolloutSchema,
  RolloutState,
  RolloutTrafficSchema,
  TrafficFiguresSchema,
} from "@berth/proto/type/v1/release";
import type { App, Artifact, Canary, Release, Rollout, RolloutEvent, RolloutTraffic, TrafficFigures } from "@berth/proto/type/v1/release";
import { effectiveResources } from "./formation.js";
import { resolveHealth } from "./health-settings.js";
import type { HealthDefaults, HealthSettings } from "./health-settings.js";
import type { AppRecord } from "./store/apps.js";
import type { CanaryRecord, CanaryStateName, CanaryTrafficStateName } from "./store/canary.js";
import type { AutoscaleRuleRecord, FormationRecord } from "./store/formation.js";
import type { ArtifactRecord, ReleaseRecord, ReleaseStatusName } from "./store/releases.js";
import type { ReplicaRecord } from "./store/replicas.js";
import type { RolloutEventRecord, RolloutRecord, RolloutStateName } from "./store/rollouts.js";
import type { TrafficFiguresRecord, TrafficRecord } from "./store/traffic.js";
import { trafficTotals } from "./traffic-figures.js";

/** An app as the API shows it. */
export function appMessage(app: AppRecord, activeRolloutId: string): App {
  return create(AppSchema, {
    name: app.name,
    team: app.team,
    createdAt: timestampFromDate(app.createdAt),
    currentReleaseVersion: app.currentReleaseVersion,
    activeRolloutId,
    deleting: app.deleting,
  });
}

function artifactMessage(artifact: ArtifactRecord): Artifact {
  const commit = artifact.commit ?? "";
  if (artifact.image !== undefined) return create(ArtifactSchema, { source: { case: "image", value: artifact.image }, digest: artifact.digest, commit });
  return create(ArtifactSchema, { source: { case: "sourceUploadId", value: artifact.sourceUploadId ?? "" }, digest: artifact.digest, commit });
}

const RELEASE_STATUS: Record<ReleaseStatusName, ReleaseStatus> = {
  pending: ReleaseStatus.PENDING,
  release_phase: ReleaseStatus.RELEASE_PHASE,
  rolling_out: ReleaseStatus.ROLLING_OUT,
  succeeded: ReleaseStatus.SUCCEEDED,
  failed: ReleaseStatus.FAILED,
  rolled_back: ReleaseStatus.ROLLED_BACK,
};

/** A release as the API shows it. */
export function releaseMessage(
  release: ReleaseRecord,
  healthDefaults: HealthDefaults,
  rolloutTraffic?: TrafficFiguresRecord[],
  canary?: CanaryRecord,
): Release {
  return create(ReleaseSchema, {
    app: release.app,
    version: release.version,
    artifact: artifactMessage(release.artifact),
    processes: release.processes.map((process) =>
      create(ProcessDefinitionSchema, { processType: process.processType, command: process.command, routingClass: routingClassOf(process.processType) }),
    ),
    config: release.config,
    formation: release.formation.map((entry) =>
      formationMessage({
        app: release.app,
        entry: { ...entry, lastAutoscale: null },
        command: release.processes.find((p) => p.processType === entry.processType)?.command ?? "",
        readyReplicas: 0,
        rule: undefined,
        healthDefaults,
      }),
    ),
    description: release.description,
    status: RELEASE_STATUS[release.status],
    createdAt: timestampFromDate(release.createdAt),
    rollbackOfVersion: release.rollbackOfVersion,
    failureReason: release.failureReason,
    failureMessage: release.failureMessage,
    failureLog: release.failureLog,
    rolloutTraffic: rolloutTraffic && rolloutTrafficMessage({ complete: true, byRelease: rolloutTraffic }),
    canary: canary && canaryMessage(canary),
  });
}

const CANARY_STATE: Record<CanaryStateName, CanaryState> = {
  starting: CanaryState.STARTING,
  running: CanaryState.RUNNING,
  promoted: CanaryState.PROMOTED,
  aborted: CanaryState.ABORTED,
};

const CANARY_TRAFFIC_STATE: Record<CanaryTrafficStateName, CanaryTrafficState> = {
  counting: CanaryTrafficState.COUNTING,
  complete: CanaryTrafficState.COMPLETE,
  partial: CanaryTrafficState.PARTIAL,
};

/** A canary as the API shows it. */
export function canaryMessage(canary: CanaryRecord): Canary {
  return create(CanarySchema, {
    policy: {
      percent: canary.policy.percent,
      stepPercent: canary.policy.stepPercent,
      intervalMs: canary.policy.intervalMs,
      maxFailureRate: canary.policy.maxFailureRate,
    },
    state: CANARY_STATE[canary.state],
    currentPercent: canary.currentPercent,
    stepStartedAt: canary.stepStartedAt > 0 ? timestampFromDate(new Date(canary.stepStartedAt)) : undefined,
    byHand: canary.byHand,
    reason: canary.reason,
    message: canary.message,
    endedAt: canary.endedAt > 0 ? timestampFromDate(new Date(canary.endedAt)) : undefined,
    traffic: canary.traffic.map(trafficFiguresMessage),
    trafficState: CANARY_TRAFFIC_STATE[canary.trafficState],
  });
}

const ROLLOUT_STATE: Record<RolloutStateName, RolloutState> = {
  pending: RolloutState.PENDING,
  release_phase: RolloutState.RELEASE_PHASE,
  rolling: RolloutState.ROLLING,
  rolling_back: RolloutState.ROLLING,
  succeeded: RolloutState.SUCCEEDED,
  failed: RolloutState.FAILED,
  rolled_back: RolloutState.ROLLED_BACK,
};

/** A rollout's figures as the API shows them. */
export function rolloutTrafficMessage(traffic: TrafficRecord): RolloutTraffic {
  const totals = trafficTotals(traffic.byRelease);
  return create(RolloutTrafficSchema, {
    requests: BigInt(totals.requests),
    failed: BigInt(totals.failed),
    appErrors: BigInt(totals.appErrors),
    complete: traffic.complete,
    byRelease: traffic.byRelease.map(trafficFiguresMessage),
  });
}

function trafficFiguresMessage(figures: TrafficFiguresRecord): TrafficFigures {
  return create(TrafficFiguresSchema, {
    processType: figures.processType,
    releaseVersion: figures.releaseVersion,
    requests: BigInt(figures.requests),
    failed: BigInt(figures.failed),
    appErrors: BigInt(figures.appErrors),
  });
}

/** A rollout as the API shows it; rolling back shows as ROLLING with its reason. */
export function rolloutMessage(rollout: RolloutRecord, traffic?: TrafficRecord): Rollout {
  return create(RolloutSchema, {
    id: rollout.id,
    app: rollout.app,
    releaseVersion: rollout.releaseVersion,
    previousReleaseVersion: rollout.previousReleaseVersion,
    state: ROLLOUT_STATE[rollout.state],
    reason: rollout.reason,
    message: rollout.message,
    startedAt: timestampFromDate(rollout.startedAt),
    finishedAt: rollout.finishedAt ? timestampFromDate(rollout.finishedAt) : undefined,
    processTypes: rollout.processTypes,
    traffic: traffic && rolloutTrafficMessage(traffic),
    canary: rollout.canary === null ? undefined : canaryMessage(rollout.canary),
  });
}

/** A rollout step as the API shows it. */
export function rolloutEventMessage(event: RolloutEventRecord, rollout: RolloutRecord): RolloutEvent {
  return create(RolloutEventSchema, {
    rolloutId: event.rolloutId,
    sequence: BigInt(event.sequence),
    time: timestampFromDate(event.time),
    kind: RolloutEventKind[event.kind as keyof typeof RolloutEventKind] ?? RolloutEventKind.UNSPECIFIED,
    app: rollout.app,
    releaseVersion: rollout.releaseVersion,
    processType: event.processType,
    replica: event.replica,
    message: event.message,
    reason: event.reason,
    logTail: event.logTail,
  });
}

/** A replica as `ps` shows it. */
export function replicaMessage(replica: ReplicaRecord): Replica {
  return create(ReplicaSchema, {
    name: replica.name,
    app: replica.app,
    processType: replica.processType,
    routingClass: routingClassOf(replica.processType),
    index: replica.index,
    releaseVersion: replica.releaseVersion,
    state: replica.state,
    ready: replica.ready,
    restarts: replica.restarts,
    startedAt: replica.startedAt ? timestampFromDate(replica.startedAt) : undefined,
    zone: replica.zone,
    host: replica.host,
    port: replica.port,
    isolation: replica.isolation,
    lastExitReason: replica.lastExitReason,
  });
}

/** Effective health settings as the API shows them. */
export function healthCheckMessage(routingClass: RoutingClass, health: HealthSettings): HealthCheck {
  return create(HealthCheckSchema, {
    // Only web processes are probed over HTTP: a path means nothing for the others.
    path: routingClass === RoutingClass.WEB ? health.path : "",
    intervalMs: health.intervalMs,
    timeoutMs: health.timeoutMs,
    healthyThreshold: health.healthyThreshold,
    unhealthyThreshold: health.unhealthyThreshold,
    startTimeoutMs: health.startTimeoutMs,
    minReadyMs: health.minReadyMs,
  });
}

/** One type of the formation view (`pods`). */
export function formationMessage(view: {
  app: string;
  entry: FormationRecord;
  command: string;
  readyReplicas: number;
  rule: AutoscaleRuleRecord | undefined;
  healthDefaults: HealthDefaults;
  /** How its replicas are isolated (see Replica.isolation); empty while it has none. */
  isolation?: string;
}): ProcessFormation {
  const { entry } = view;
  const routingClass = routingClassOf(entry.processType);
  const resources = effectiveResources(entry);
  const decision = entry.lastAutoscale;
  return create(ProcessFormationSchema, {
    processType: entry.processType,
    routingClass,
    command: view.command,
    replicas: entry.replicas,
    readyReplicas: view.readyReplicas,
    size: entry.size,
    cpuMillis: resources.cpuMillis,
    memoryMb: resources.memoryMb,
    resourcesOverridden: entry.cpuMillis !== null || entry.memoryMb !== null,
    health: healthCheckMessage(routingClass, resolveHealth(routingClass, entry.health, view.healthDefaults)),
    autoscale: view.rule && create(AutoscaleRuleSchema, view.rule),
    lastAutoscale: decision
      ? create(AutoscaleDecisionSchema, {
          time: timestampFromDate(new Date(decision.time)),
          fromReplicas: decision.fromReplicas,
          toReplicas: decision.toReplicas,
          observedCpuPercent: decision.observedCpuPercent,
          reason: decision.reason,
        })
      : undefined,
    internalHostname: routingClass === RoutingClass.TCP ? internalHostname(view.app, entry.processType) : "",
    isolation: view.isolation ?? "",
  });
}

/** The formation view of an app: every type of its release (or `web` before the first), in Procfile order. */
export function formationView(options: {
  app: string;
  processes: { processType: string; command: string }[];
  formation: FormationRecord[];
  rules: AutoscaleRuleRecord[];
  replicas: ReplicaRecord[];
  healthDefaults: HealthDefaults;
}): ProcessFormation[] {
  const entries = new Map(options.formation.map((entry) => [entry.processType, entry]));
  return options.processes
    .filter((process) => routingClassOf(process.processType) !== RoutingClass.RELEASE && entries.has(process.processType))
    .map((process) =>
      formationMessage({
        app: options.app,
        entry: entries.get(process.processType)!,
        command: process.command,
        readyReplicas: options.replicas.filter((replica) => replica.processType === process.processType && replica.ready && replica.retirePhase === "").length,
        rule: options.rules.find((rule) => rule.processType === process.processType),
        healthDefaults: options.healthDefaults,
        isolation: options.replicas.find((replica) => replica.processType === process.processType && replica.isolation !== "")?.isolation,
      }),
    );
}
