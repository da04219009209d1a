import type { KubernetesObject, V1Container, V1Deployment, V1EnvVar, V1Job, V1Probe, V1Service, V2HorizontalPodAutoscaler } from "@kubernetes/client-node";
import { LABEL, labelSelector, processObjectName, routingClassOf, standardLabels } from "@berth/kit";
import type { PruneScope } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { SchedulerConfig } from "../../config.js";
import { effectiveResources } from "../../formation.js";
import type { FormationEntry } from "../../formation.js";
import { resolveHealth } from "../../health-settings.js";
import type { HealthDefaults, HealthSettings } from "../../health-settings.js";
import { DEFAULT_POD_SIZE } from "../../pod-sizes.js";
import { releaseEnvironment } from "../../release-commands.js";
import type { AutoscaleRuleRecord } from "../../store/formation.js";
import type { ReleaseRecord } from "../../store/releases.js";

/** The field manager of the scheduler's server-side applies, and its app.kubernetes.io/managed-by label. */
export const SCHEDULER_FIELD_MANAGER = "berth-scheduler";


/** How long a finished release Job stays for its logs and as proof it ran, before Kubernetes collects it. */
export const DEFAULT_RELEASE_JOB_TTL_SECONDS = 7 * 24 * 3600;

/** The pod annotation whose change rolls a type's pods (a rolling restart). */
export const RESTART_GENERATION_ANNOTATION = "berth.dev/restart-generation";

/** How the scheduler's objects are shaped, beyond the app's own state. */
export interface ManifestSettings {
  namespace: string;
  /** Field manager and managed-by label. */
  managedBy: string;
  /** $PORT: where every web, tcp and rtc process listens in its container. */
  containerPort: number;
  /** The port of each web process's Service. */
  webServicePort: number;
  /** New pods a Deployment may run above its count during a rollout, in percent. */
  maxSurgePercent: number;
  /** Kubernetes marks a rollout failed when it made no progress for this long. */
  progressDeadlineMs: number;
  /** The release Job's active deadline. */
  releaseTimeoutMs: number;
  releaseJobTtlSeconds: number;
  /** Between SIGTERM and SIGKILL of a pod. */
  stopGraceMs: number;
  health: HealthDefaults;
}

/** The manifest settings the scheduler's configuration implies. */
export function manifestSettingsFrom(config: SchedulerConfig, overrides: Partial<ManifestSettings> = {}): ManifestSettings {
  return {
    namespace: config.kubernetes.namespace,
    managedBy: SCHEDULER_FIELD_MANAGER,
    containerPort: config.kubernetes.containerPort,
    webServicePort: config.kubernetes.webServicePort,
    maxSurgePercent: config.maxSurgePercent,
    progressDeadlineMs: config.progressDeadlineMs,
    releaseTimeoutMs: config.releaseTimeoutMs,
    releaseJobTtlSeconds: DEFAULT_RELEASE_JOB_TTL_SECONDS,
    stopGraceMs: config.stopGraceMs,
    health: config.health,
    ...overrides,
  };
}

/** What an app runs: the release, its formation and autoscale rules. */
export interface AppManifestInput {
  team: string;
  release: ReleaseRecord;
  /** The app's formation; a type without an entry runs 0 replicas of the default size. */
  formation: readonly FormationEntry[];
  autoscaleRules: readonly AutoscaleRuleRecord[];
}

/** The labels that select a process type's pods; stable across releases, as a Deployment's selector must be. */
export function podSelectorLabels(app: string, processType: string): Record<string, string> {
  return { [LABEL.name]: app, [LABEL.component]: processType };
}

/** The kinds the scheduler applies per app (the release Job aside), for pruning what an app no longer has. */
export function appPruneScopes(app: string, settings: Pick<ManifestSettings, "namespace" | "managedBy">): PruneScope[] {
  const selector = labelSelector({ [LABEL.name]: app, [LABEL.managedBy]: settings.managedBy });
  return [
    { apiVersion: "apps/v1", kind: "Deployment", namespace: settings.namespace, labelSelector: selector },
    { apiVersion: "v1", kind: "Service", namespace: settings.namespace, labelSelector: selector },
    { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", namespace: settings.namespace, labelSelector: selector },
  ];
}

/** The app's release Jobs, which deleting the app removes too. */
export function releaseJobPruneScope(app: string, settings: Pick<ManifestSettings, "namespace" | "managedBy">): PruneScope {
  return { apiVersion: "batch/v1", kind: "Job", namespace: settings.namespace, labelSelector: labelSelector({ [LABEL.name]: app, [LABEL.managedBy]: settings.managedBy }) };
}

/** The name of a release's Job: one per release version, so applying it again never runs it twice. */
export function releaseJobName(app: string, version: number): string {
  return `${app}-release-v${version}`;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Why `name` cannot name a Deployment, Service or Job (pods and Services are named after it), or undefined when it can. */
function objectNameProblem(name: string): string | undefined {
  if (name.length > 63) return `"${name}" is longer than 63 characters: shorten the app or process type name`;
  // A Service name is an RFC 1035 label.
  if (!/^[a-z]/.test(name)) return `"${name}" must start with a letter on Kubernetes`;
  return undefined;
}

/**
 * What keeps an app's objects from being named on Kubernetes: each
 * `<app>-<type>` and the release Job `<app>-release-v<version>`. For the
 * API to refuse a release before anything is applied.
 */
export function kubernetesNameProblems(app: string, processTypes: readonly string[], releaseVersion: number): string[] {
  const names = processTypes.filter((type) => routingClassOf(type) !== RoutingClass.RELEASE).map((type) => processObjectName(app, type));
  if (processTypes.some((type) => routingClassOf(type) === RoutingClass.RELEASE)) names.push(releaseJobName(app, releaseVersion));
  return names.map(objectNameProblem).filter((problem): problem is string => problem !== undefined);
}

function checkName(name: string, what: string): string {
  const problem = objectNameProblem(name);
  if (problem !== undefined) throw new Error(`${what} name ${problem}`);
  return name;
}

function environment(input: AppManifestInput, processType: string, port: number | undefined): V1EnvVar[] {
  const values = releaseEnvironment(input.release, processType);
  if (port !== undefined) values.PORT = String(port);
  // Sorted, so the same configuration always yields the same object and a repeated apply changes nothing.
  const env: V1EnvVar[] = Object.keys(values)
    .sort()
    .map((name) => ({ name, value: values[name]! }));
  env.push({ name: "BERTH_REPLICA_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
  return env;
}

function probeHandler(routingClass: RoutingClass, health: HealthSettings, port: number): Pick<V1Probe, "httpGet" | "tcpSocket"> | undefined {
  if (routingClass === RoutingClass.WEB) return { httpGet: { path: health.path, port } };
  if (routingClass === RoutingClass.TCP || routingClass === RoutingClass.RTC) return { tcpSocket: { port } };
  return undefined;
}

/** Readiness gates traffic, startup allows the start timeout, liveness restarts a replica that stopped answering. */
function probes(routingClass: RoutingClass, health: HealthSettings, port: number): Pick<V1Container, "readinessProbe" | "livenessProbe" | "startupProbe"> {
  const handler = probeHandler(routingClass, health, port);
  if (handler === undefined) return {};
  const timing = { periodSeconds: seconds(health.intervalMs), timeoutSeconds: seconds(health.timeoutMs) };
  return {
    startupProbe: { ...handler, ...timing, failureThreshold: Math.max(1, Math.ceil(health.startTimeoutMs / (timing.periodSeconds * 1000))) },
    readinessProbe: { ...handler, ...timing, successThreshold: health.healthyThreshold, failureThreshold: health.unhealthyThreshold },
    livenessProbe: { ...handler, ...timing, successThreshold: 1, failureThreshold: health.unhealthyThreshold },
  };
}

function resources(entry: Pick<FormationEntry, "size" | "cpuMillis" | "memoryMb">): V1Container["resources"] {
  const { cpuMillis, memoryMb } = effectiveResources(entry);
  const quantities = { cpu: `${cpuMillis}m`, memory: `${memoryMb}Mi` };
  // Requests equal to limits: a pod size is what the replica gets, no more and no less.
  return { requests: quantities, limits: { ...quantities } };
}

function formationOf(input: AppManifestInput, processType: string): FormationEntry {
  return (
    input.formation.find((entry) => entry.processType === processType) ?? {
      processType,
      replicas: 0,
      size: DEFAULT_POD_SIZE,
      cpuMillis: null,
      memoryMb: null,
      health: {},
      restartGeneration: 0,
    }
  );
}

function portName(routingClass: RoutingClass): string {
  return { [RoutingClass.WEB]: "http", [RoutingClass.TCP]: "tcp", [RoutingClass.RTC]: "rtc" }[routingClass as number] ?? "port";
}

function deploymentFor(input: AppManifestInput, processType: string, command: string, settings: ManifestSettings): V1Deployment {
  const routingClass = routingClassOf(processType);
  const entry = formationOf(input, processType);
  const rule = input.autoscaleRules.find((candidate) => candidate.processType === processType);
  const health = resolveHealth(routingClass, entry.health, settings.health);
  const name = checkName(processObjectName(input.release.app, processType), "Deployment");
  const listens = routingClass === RoutingClass.WEB || routingClass === RoutingClass.TCP || routingClass === RoutingClass.RTC;
  const port = listens ? settings.containerPort : undefined;
  const version = `v${input.release.version}`;
  const selector = podSelectorLabels(input.release.app, processType);
  const labels = standardLabels({ app: input.release.app, component: processType, team: input.team, managedBy: settings.managedBy, instance: name, version });
  const spread = (rule?.maxReplicas ?? entry.replicas) >= 2;
  const minReadySeconds = health.minReadyMs > 0 ? seconds(health.minReadyMs) : 0;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: settings.namespace, labels },
    spec: {
      // An HPA owns the replica count of an autoscaled type; applying one would fight it.
      ...(rule === undefined ? { replicas: entry.replicas } : {}),
      selector: { matchLabels: selector },
      // maxUnavailable 0: old pods go only once new ones are available, so capacity never drops.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: `${settings.maxSurgePercent}%`, maxUnavailable: 0 } },
      minReadySeconds,
      progressDeadlineSeconds: Math.max(seconds(settings.progressDeadlineMs), minReadySeconds + 1),
      revisionHistoryLimit: 5,
      template: {
        metadata: {
          labels,
          annotations: { [RESTART_GENERATION_ANNOTATION]: String(entry.restartGeneration) },
        },
        spec: {
          // Apps get no API credentials and no Docker-link variables of every Service in the namespace.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: seconds(settings.stopGraceMs),
          containers: [
            {
              name: processType,
              image: input.release.artifact.image!,
              command: ["/bin/sh", "-c", command],
              env: environment(input, processType, port),
              ...(port !== undefined ? { ports: [{ name: portName(routingClass), containerPort: port, protocol: "TCP" }] } : {}),
              ...(port !== undefined ? probes(routingClass, health, port) : {}),
              resources: resources(entry),
            },
          ],
          ...(spread
            ? {
                // ScheduleAnyway: a cluster whose nodes carry no zone label still runs the app, spread as well as it can.
                topologySpreadConstraints: [
                  { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: selector }, matchLabelKeys: ["pod-template-hash"] },
                ],
              }
            : {}),
        },
      },
    },
  };
}

function serviceFor(input: AppManifestInput, processType: string, settings: ManifestSettings): V1Service {
  const routingClass = routingClassOf(processType);
  const name = checkName(processObjectName(input.release.app, processType), "Service");
  const port = routingClass === RoutingClass.WEB ? settings.webServicePort : settings.containerPort;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: settings.namespace, labels: standardLabels({ app: input.release.app, component: processType, team: input.team, managedBy: settings.managedBy, instance: name }) },
    spec: {
      type: "ClusterIP",
      selector: podSelectorLabels(input.release.app, processType),
      ports: [{ name: portName(routingClass), port, targetPort: settings.containerPort, protocol: "TCP" }],
    },
  };
}

function autoscalerFor(input: AppManifestInput, rule: AutoscaleRuleRecord, settings: ManifestSettings): V2HorizontalPodAutoscaler {
  const name = processObjectName(input.release.app, rule.processType);
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name, namespace: settings.namespace, labels: standardLabels({ app: input.release.app, component: rule.processType, team: input.team, managedBy: settings.managedBy, instance: name }) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
      minReplicas: rule.minReplicas,
      maxReplicas: rule.maxReplicas,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: rule.targetCpuPercent } } }],
    },
  };
}

/**
 * Every object an app's release and formation need, the release Job aside:
 * a Deployment per process type, a Service per web and tcp type, an
 * autoscaling/v2 HorizontalPodAutoscaler per autoscale rule of a type the
 * release runs. rtc types get no Service: the TURN allocator exposes them.
 */
export function appObjects(input: AppManifestInput, settings: ManifestSettings): KubernetesObject[] {
  if (!input.release.artifact.image) throw new Error(`release v${input.release.version} of ${input.release.app} has no container image`);
  const deployments: KubernetesObject[] = [];
  const services: KubernetesObject[] = [];
  const autoscalers: KubernetesObject[] = [];
  for (const { processType, command } of input.release.processes) {
    const routingClass = routingClassOf(processType);
    if (routingClass === RoutingClass.RELEASE) continue;
    deployments.push(deploymentFor(input, processType, command, settings));
    if (routingClass === RoutingClass.WEB || routingClass === RoutingClass.TCP) services.push(serviceFor(input, processType, settings));
    const rule = input.autoscaleRules.find((candidate) => candidate.processType === processType);
    if (rule !== undefined) autoscalers.push(autoscalerFor(input, rule, settings));
  }
  return [...deployments, ...services, ...autoscalers];
}

/**
 * The Job running the release's `release` command once, or undefined when
 * its Procfile has none: no retries (backoffLimit 0), killed at the release
 * timeout, collected by Kubernetes a while after it finished.
 */
export function releaseJobFor(input: AppManifestInput, settings: ManifestSettings): V1Job | undefined {
  const command = input.release.processes.find((process) => process.processType === "release")?.command;
  if (command === undefined) return undefined;
  if (!input.release.artifact.image) throw new Error(`release v${input.release.version} of ${input.release.app} has no container image`);
  const name = checkName(releaseJobName(input.release.app, input.release.version), "Job");
  const labels = standardLabels({
    app: input.release.app,
    component: "release",
    team: input.team,
    managedBy: settings.managedBy,
    instance: processObjectName(input.release.app, "release"),
    version: `v${input.release.version}`,
  });
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: settings.namespace, labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: seconds(settings.releaseTimeoutMs),
      ttlSecondsAfterFinished: settings.releaseJobTtlSeconds,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: seconds(settings.stopGraceMs),
          containers: [
            {
              name: "release",
              image: input.release.artifact.image,
              command: ["/bin/sh", "-c", command],
              env: environment(input, "release", undefined),
              resources: resources(formationOf(input, "release")),
            },
          ],
        },
      },
    },
  };
}
