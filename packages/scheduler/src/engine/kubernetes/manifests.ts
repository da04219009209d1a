import type {
  KubernetesObject,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1Job,
  V1Namespace,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1Probe,
  V1Secret,
  V1Service,
  V2HorizontalPodAutoscaler,
} from "@kubernetes/client-node";
import { LABEL, internalHostname, kubernetesNameProblem, labelSelector, processObjectName, routingClassOf, standardLabels, teamNamespace } from "@berth/kit";
import type { PruneScope } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { SchedulerConfig } from "../../config.js";
import { effectiveResources, releaseTaskResources } from "../../formation.js";
import type { FormationEntry } from "../../formation.js";
import { resolveHealth } from "../../health-settings.js";
import type { HealthDefaults, HealthSettings } from "../../health-settings.js";
import { DEFAULT_POD_SIZE } from "../../pod-sizes.js";
import { parseImageReference, pinnedImage } from "../../image-reference.js";
import { rtcStatefulSetFrom, turnSecretFor, turnSecretSelector } from "./rtc-statefulset.js";
import type { RtcReplicaEnv } from "./rtc-statefulset.js";
import { releaseEnvironment } from "../../release-commands.js";
import type { AutoscaleRuleRecord } from "../../store/formation.js";
import type { ReleaseRecord } from "../../store/releases.js";

/** The field manager of the scheduler's server-side applies, and its app.kubernetes.io/managed-by label. */
export const SCHEDULER_FIELD_MANAGER = "berth-scheduler";

/** The old ReplicaSets each Deployment keeps (for `kubectl rollout undo`); their releases keep their config Secrets. */
export const REVISION_HISTORY_LIMIT = 5;

/** How long a finished release Job stays for its logs and as proof it ran, before Kubernetes collects it. */
export const DEFAULT_RELEASE_JOB_TTL_SECONDS = 7 * 24 * 3600;

/** The pod annotation whose change rolls a type's pods (a rolling restart): the one `kubectl rollout restart` sets. */
export const RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt";

/** How the scheduler's objects are shaped, beyond the app's own state. */
export interface ManifestSettings {
  /** Teams' namespaces are `<namespaceBase>-<team>` (the kit's teamNamespace, which netpol uses too). */
  namespaceBase: string;
  /** Seconds a stopping pod that receives traffic waits (preStop) so the ingress drops it before SIGTERM. */
  preStopDelaySeconds: number;
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
    namespaceBase: config.kubernetes.namespace,
    preStopDelaySeconds: 5,
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
  /** The TURN allocator's variables of the first replica of each `*-rtc` type the release runs. */
  rtc?: ReadonlyMap<string, RtcReplicaEnv>;
}

/** The labels that select a process type's pods; stable across releases, as a Deployment's selector must be. */
export function podSelectorLabels(app: string, processType: string): Record<string, string> {
  return { [LABEL.name]: app, [LABEL.component]: processType };
}

/** The namespace of a team's apps. */
export function namespaceOf(team: string, settings: Pick<ManifestSettings, "namespaceBase">): string {
  return teamNamespace(settings.namespaceBase, team);
}

/** Where an app's objects live and how they are selected, for pruning and watching. */
export interface AppScope {
  app: string;
  namespace: string;
}

/** The kinds the scheduler applies per app (the release Job and config Secrets aside), for pruning what an app no longer has. */
export function appPruneScopes(scope: AppScope, settings: Pick<ManifestSettings, "managedBy">): PruneScope[] {
  const selector = labelSelector({ [LABEL.name]: scope.app, [LABEL.managedBy]: settings.managedBy });
  return [
    { apiVersion: "apps/v1", kind: "Deployment", namespace: scope.namespace, labelSelector: selector },
    { apiVersion: "apps/v1", kind: "StatefulSet", namespace: scope.namespace, labelSelector: selector },
    { apiVersion: "v1", kind: "Secret", namespace: scope.namespace, labelSelector: labelSelector(turnSecretSelector(scope.app, settings.managedBy)) },
    { apiVersion: "v1", kind: "Service", namespace: scope.namespace, labelSelector: selector },
    { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", namespace: scope.namespace, labelSelector: selector },
    { apiVersion: "policy/v1", kind: "PodDisruptionBudget", namespace: scope.namespace, labelSelector: selector },
  ];
}

/**
 * What deleting the app removes besides `appPruneScopes`: its release Jobs
 * and its config Secrets (while the app lives, those of recent releases stay
 * so an old ReplicaSet's new pod still finds its release's configuration:
 * see pruneReleaseSecrets).
 */
export function appHistoryPruneScopes(scope: AppScope, settings: Pick<ManifestSettings, "managedBy">): PruneScope[] {
  const selector = labelSelector({ [LABEL.name]: scope.app, [LABEL.managedBy]: settings.managedBy });
  return [
    { apiVersion: "batch/v1", kind: "Job", namespace: scope.namespace, labelSelector: selector },
    { apiVersion: "v1", kind: "Secret", namespace: scope.namespace, labelSelector: selector },
  ];
}

/**
 * A team's namespace, labelled with the team. The netpol service fills it
 * with the team's NetworkPolicies: default deny both ways, then what the
 * routing contract and the trust lists allow.
 */
export function teamNamespaceObject(team: string, settings: Pick<ManifestSettings, "namespaceBase" | "managedBy">): V1Namespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: namespaceOf(team, settings), labels: { [LABEL.team]: team, [LABEL.partOf]: "berth", [LABEL.managedBy]: settings.managedBy } },
  };
}

/** The name of a release's Job: one per release version, so applying it again never runs it twice. */
export function releaseJobName(app: string, version: number): string {
  return `${app}-release-v${version}`;
}

/** The name of the Secret holding a release's config vars, which its pods read with envFrom. */
export function releaseSecretName(app: string, version: number): string {
  return `${app}-config-v${version}`;
}

/**
 * The image a release's pods run: pinned by digest (`name@sha256:…`) once
 * the release knows it, so every pod of the release, a scale-up months
 * later or a rollback to it, runs the bytes it was released with.
 */
export function releaseImage(release: ReleaseRecord): string {
  const image = release.artifact.image;
  if (!image) throw new Error(`release v${release.version} of ${release.app} has no container image`);
  const reference = parseImageReference(image);
  if (typeof reference === "string" || release.artifact.digest === "" || reference.digest !== undefined) return image;
  return pinnedImage(reference, release.artifact.digest);
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Why `name` cannot name a Deployment, Service, Job or Secret, with a hint, or undefined when it can. */
function objectNameProblem(name: string): string | undefined {
  const problem = kubernetesNameProblem(name);
  return problem === undefined ? undefined : `${problem}: shorten the app or process type name`;
}

/**
 * What keeps an app's objects from being named on Kubernetes: each
 * process's `<app>-<type>-<hash>`, each tcp process's Service (its internal
 * hostname), the release Job and the config Secret. For the API to refuse a
 * release with INVALID_ARGUMENT before anything is applied.
 */
export function kubernetesNameProblems(app: string, processTypes: readonly string[], releaseVersion: number): string[] {
  const names = processTypes.filter((type) => routingClassOf(type) !== RoutingClass.RELEASE).map((type) => processObjectName(app, type));
  names.push(...processTypes.filter((type) => routingClassOf(type) === RoutingClass.TCP).map((type) => serviceName(app, type)));
  if (processTypes.some((type) => routingClassOf(type) === RoutingClass.RELEASE)) names.push(releaseJobName(app, releaseVersion));
  names.push(releaseSecretName(app, releaseVersion));
  return [...new Set(names)].map(objectNameProblem).filter((problem): problem is string => problem !== undefined);
}

/**
 * The name of a web or tcp process's Service. A tcp process's is its
 * internal hostname, `<app>-<type>` exactly: the private contract is that a
 * trusted app of the team reaches it there, and on a cluster a Service's
 * name is what resolves in its namespace. Two apps' `<app>-<type>` can
 * collide (app `a` with `b-tcp`, app `a-b` with `tcp`); that is a real
 * hostname conflict, which the API refuses naming the other app
 * (checkKubernetesNames), and the deployer's ownership check refuses as a
 * last resort. No other object is named so: a hashed name never ends in `-tcp`.
 */
export function serviceName(app: string, processType: string): string {
  return routingClassOf(processType) === RoutingClass.TCP ? internalHostname(app, processType) : processObjectName(app, processType);
}

function checkName(name: string, what: string): string {
  const problem = objectNameProblem(name);
  if (problem !== undefined) throw new Error(`${what} name ${problem}`);
  return name;
}

/**
 * A release's config vars (and BERTH_APP, BERTH_RELEASE, BERTH_RELEASE_VERSION), in an immutable
 * Secret its pods read with envFrom: config never appears in a Deployment
 * or Job spec, where anyone who may read workloads would see it.
 */
export function releaseSecretFor(input: AppManifestInput, settings: ManifestSettings): V1Secret {
  const { BERTH_PROCESS_TYPE: _type, ...values } = releaseEnvironment(input.release, "");
  const name = checkName(releaseSecretName(input.release.app, input.release.version), "Secret");
  const data = Object.fromEntries(
    Object.keys(values)
      .sort()
      .map((key) => [key, Buffer.from(values[key]!).toString("base64")]),
  );
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: namespaceOf(input.team, settings),
      labels: standardLabels({
        app: input.release.app,
        component: "config",
        team: input.team,
        managedBy: settings.managedBy,
        version: `v${input.release.version}`,
      }),
    },
    type: "Opaque",
    immutable: true,
    data,
  };
}

/** The per-process variables that are not configuration: the type, $PORT and the replica's own name. */
function environment(input: AppManifestInput, processType: string, port: number | undefined): Pick<V1Container, "env" | "envFrom"> {
  const env: V1EnvVar[] = [{ name: "BERTH_PROCESS_TYPE", value: processType }];
  if (port !== undefined) env.push({ name: "PORT", value: String(port) });
  env.push({ name: "BERTH_REPLICA_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
  return { envFrom: [{ secretRef: { name: releaseSecretName(input.release.app, input.release.version) } }], env };
}

/** The restricted Pod Security Standard, as far as an image berth did not build allows: no escalation, no capabilities, the runtime's seccomp profile. */
const podSecurity: Pick<V1PodSpec, "securityContext"> = { securityContext: { seccompProfile: { type: "RuntimeDefault" } } };
const containerSecurity: Pick<V1Container, "securityContext"> = {
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" } },
};

/** The process's command, or none at all for an image's own entrypoint (a `web` without a Procfile). */
function commandOf(command: string): Pick<V1Container, "command"> {
  return command.trim() === "" ? {} : { command: ["/bin/sh", "-c", command] };
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
    // Slower and more tolerant than readiness: a busy replica leaves the load balancer long before it is restarted.
    livenessProbe: {
      ...handler,
      periodSeconds: timing.periodSeconds * 2,
      timeoutSeconds: timing.timeoutSeconds * 2,
      successThreshold: 1,
      failureThreshold: health.unhealthyThreshold * 2,
    },
  };
}

function resources(entry: Pick<FormationEntry, "size" | "cpuMillis" | "memoryMb">): V1Container["resources"] {
  return podResources(effectiveResources(entry));
}

function podResources({ cpuMillis, memoryMb }: { cpuMillis: number; memoryMb: number }): V1Container["resources"] {
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
  const receivesTraffic = routingClass === RoutingClass.WEB || routingClass === RoutingClass.TCP;
  const spreadOver = (topologyKey: string) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: "ScheduleAnyway",
    labelSelector: { matchLabels: selector },
    matchLabelKeys: ["pod-template-hash"],
  });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: namespaceOf(input.team, settings), labels },
    spec: {
      // An HPA owns the replica count of an autoscaled type; applying one would fight it.
      ...(rule === undefined ? { replicas: entry.replicas } : {}),
      selector: { matchLabels: selector },
      // maxUnavailable 0: old pods go only once new ones are available, so capacity never drops.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: `${settings.maxSurgePercent}%`, maxUnavailable: 0 } },
      minReadySeconds,
      progressDeadlineSeconds: Math.max(seconds(settings.progressDeadlineMs), minReadySeconds + 1),
      revisionHistoryLimit: REVISION_HISTORY_LIMIT,
      template: {
        metadata: {
          labels,
          ...(entry.restartedAt ? { annotations: { [RESTARTED_AT_ANNOTATION]: entry.restartedAt.toISOString() } } : {}),
        },
        spec: {
          // Apps get no API credentials and no Docker-link variables of every Service in the namespace.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // The preStop wait comes out of the grace period, so the process still gets all of stopGraceMs after SIGTERM.
          terminationGracePeriodSeconds: seconds(settings.stopGraceMs) + (receivesTraffic ? settings.preStopDelaySeconds : 0),
          ...podSecurity,
          containers: [
            {
              name: processType,
              image: releaseImage(input.release),
              ...commandOf(command),
              ...environment(input, processType, port),
              ...(port !== undefined ? { ports: [{ name: portName(routingClass), containerPort: port, protocol: "TCP" }] } : {}),
              ...(port !== undefined ? probes(routingClass, health, port) : {}),
              // Endpoints drop a terminating pod while it still serves; SIGTERM comes after the ingress has noticed.
              ...(receivesTraffic && settings.preStopDelaySeconds > 0 ? { lifecycle: { preStop: { sleep: { seconds: settings.preStopDelaySeconds } } } } : {}),
              resources: resources(entry),
              ...containerSecurity,
            },
          ],
          ...(spread
            ? {
                // ScheduleAnyway: a cluster whose nodes carry no zone label still runs the app, spread as well as it can.
                topologySpreadConstraints: [spreadOver("topology.kubernetes.io/zone"), spreadOver("kubernetes.io/hostname")],
              }
            : {}),
        },
      },
    },
  };
}

function serviceFor(input: AppManifestInput, processType: string, settings: ManifestSettings): V1Service {
  const routingClass = routingClassOf(processType);
  const name = checkName(serviceName(input.release.app, processType), "Service");
  const port = routingClass === RoutingClass.WEB ? settings.webServicePort : settings.containerPort;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: namespaceOf(input.team, settings),
      labels: standardLabels({ app: input.release.app, component: processType, team: input.team, managedBy: settings.managedBy, instance: name }),
    },
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
    metadata: {
      name,
      namespace: namespaceOf(input.team, settings),
      labels: standardLabels({ app: input.release.app, component: rule.processType, team: input.team, managedBy: settings.managedBy, instance: name }),
    },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: routingClassOf(rule.processType) === RoutingClass.RTC ? "StatefulSet" : "Deployment", name },
      minReplicas: rule.minReplicas,
      maxReplicas: rule.maxReplicas,
      metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: rule.targetCpuPercent } } }],
    },
  };
}

/** A PodDisruptionBudget for a type that runs 2 or more replicas: voluntary disruptions (node drains) take one pod at a time. */
function disruptionBudgetFor(input: AppManifestInput, processType: string, settings: ManifestSettings): V1PodDisruptionBudget | undefined {
  const rule = input.autoscaleRules.find((candidate) => candidate.processType === processType);
  const replicas = rule?.minReplicas ?? formationOf(input, processType).replicas;
  if (replicas < 2) return undefined;
  const name = processObjectName(input.release.app, processType);
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: {
      name,
      namespace: namespaceOf(input.team, settings),
      labels: standardLabels({ app: input.release.app, component: processType, team: input.team, managedBy: settings.managedBy, instance: name }),
    },
    spec: { maxUnavailable: 1, selector: { matchLabels: podSelectorLabels(input.release.app, processType) } },
  };
}

/**
 * Every object an app's release and formation need, the release Job aside:
 * a Deployment per process type (a StatefulSet and its TURN Secret per rtc
 * type: see rtc-statefulset.ts), a Service per web and tcp type, an
 * autoscaling/v2 HorizontalPodAutoscaler per autoscale rule of a type the
 * release runs. rtc types get no Service: the TURN allocator exposes them.
 */
export function appObjects(input: AppManifestInput, settings: ManifestSettings): KubernetesObject[] {
  if (!input.release.artifact.image) throw new Error(`release v${input.release.version} of ${input.release.app} has no container image`);
  const deployments: KubernetesObject[] = [];
  const secrets: KubernetesObject[] = [];
  const services: KubernetesObject[] = [];
  const autoscalers: KubernetesObject[] = [];
  const budgets: KubernetesObject[] = [];
  for (const { processType, command } of input.release.processes) {
    const routingClass = routingClassOf(processType);
    if (routingClass === RoutingClass.RELEASE) continue;
    const deployment = deploymentFor(input, processType, command, settings);
    if (routingClass === RoutingClass.RTC) {
      const env = input.rtc?.get(processType);
      if (env === undefined) throw new Error(`${processType} of ${input.release.app} has no TURN variables from the allocator`);
      const secret = turnSecretFor(deployment.metadata!.name!, deployment.metadata!.namespace!, env, {
        app: input.release.app,
        team: input.team,
        managedBy: settings.managedBy,
      });
      secrets.push(secret);
      deployments.push(rtcStatefulSetFrom(deployment, secret, env));
    } else {
      deployments.push(deployment);
    }
    if (routingClass === RoutingClass.WEB || routingClass === RoutingClass.TCP) services.push(serviceFor(input, processType, settings));
    const rule = input.autoscaleRules.find((candidate) => candidate.processType === processType);
    if (rule !== undefined) autoscalers.push(autoscalerFor(input, rule, settings));
    const budget = disruptionBudgetFor(input, processType, settings);
    if (budget !== undefined) budgets.push(budget);
  }
  // The Secret first: pods of the new Deployments read it as they start.
  return [releaseSecretFor(input, settings), ...secrets, ...deployments, ...services, ...autoscalers, ...budgets];
}

/**
 * A Job running `command` once in a pod of the release (its image and
 * config): no retries (backoffLimit 0), killed after `timeoutMs`, collected
 * by Kubernetes a while after it finished. Its pods carry `job-name`, so
 * they are never taken for replicas.
 */
function taskJobFor(
  input: AppManifestInput,
  task: { name: string; component: string; command: string; timeoutMs: number; resources: { cpuMillis: number; memoryMb: number } },
  settings: ManifestSettings,
): V1Job {
  const name = checkName(task.name, "Job");
  const labels = standardLabels({
    app: input.release.app,
    component: task.component,
    team: input.team,
    managedBy: settings.managedBy,
    instance: processObjectName(input.release.app, task.component),
    version: `v${input.release.version}`,
  });
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, namespace: namespaceOf(input.team, settings), labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: seconds(task.timeoutMs),
      ttlSecondsAfterFinished: settings.releaseJobTtlSeconds,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: seconds(settings.stopGraceMs),
          ...podSecurity,
          containers: [
            {
              name: task.component,
              image: releaseImage(input.release),
              ...commandOf(task.command),
              ...environment(input, task.component, undefined),
              resources: podResources(task.resources),
              ...containerSecurity,
            },
          ],
        },
      },
    },
  };
}

/** The Job running the release's `release` command once, or undefined when its Procfile has none. */
export function releaseJobFor(input: AppManifestInput, settings: ManifestSettings): V1Job | undefined {
  const command = input.release.processes.find((process) => process.processType === "release")?.command;
  if (command === undefined) return undefined;
  return taskJobFor(
    input,
    {
      name: releaseJobName(input.release.app, input.release.version),
      component: "release",
      command,
      timeoutMs: settings.releaseTimeoutMs,
      // The release's own formation, not the current one: a Job's pod template never changes once applied.
      resources: releaseTaskResources(input.release.formation),
    },
    settings,
  );
}

/** The container a one-off command (`berth run`) runs in: its Job's only one. */
export const ONE_OFF_CONTAINER = "run";

/** The Job of a one-off command (`berth run`) named `name`, with the release's image and config. */
export function oneOffJobFor(input: AppManifestInput, task: { name: string; command: string; timeoutMs: number }, settings: ManifestSettings): V1Job {
  return taskJobFor(
    input,
    { ...task, component: ONE_OFF_CONTAINER, resources: effectiveResources({ size: DEFAULT_POD_SIZE, cpuMillis: null, memoryMb: null }) },
    settings,
  );
}
