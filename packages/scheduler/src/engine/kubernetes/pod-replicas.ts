import type { V1ContainerStatus, V1EndpointSlice, V1Pod } from "@kubernetes/client-node";
import { LABEL, routingClassOf } from "@berth/kit";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import type { ProcessEndpointSet } from "../../endpoints.js";
import type { ObservedReplica, ReplicaRecord } from "../../store/replicas.js";

/** Waiting reasons of a container whose image the node cannot get: it never starts until the reference is fixed. */
const IMAGE_ERRORS = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]);

/**
 * Timestamps come as Date from the client's typed reads and as RFC 3339
 * text from watch events (which the client passes on unparsed).
 */
function dateOf(value: Date | string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The app container's status: the one named after the process type, else the first. */
function appContainer(pod: V1Pod): V1ContainerStatus | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.find((status) => status.name === pod.metadata?.labels?.[LABEL.component]) ?? statuses[0];
}

/** Whether the pod passes readiness (its Ready condition), as EndpointSlices and Deployments count it. */
export function podReady(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp === undefined && (pod.status?.conditions ?? []).some((entry) => entry.type === "Ready" && entry.status === "True");
}

/**
 * Why the pod is not running as it should, in Kubernetes' own words:
 * `CrashLoopBackOff` (also while it runs again between two back-offs),
 * `OOMKilled` (also while it backs off after one),
 * `ErrImagePull`/`ImagePullBackOff`; else how its last container ended
 * (e.g. `Error`), or empty.
 */
export function podReason(pod: V1Pod): string {
  const status = appContainer(pod);
  const waiting = status?.state?.waiting?.reason;
  const lastEnd = status?.lastState?.terminated?.reason ?? status?.state?.terminated?.reason;
  if (waiting === "CrashLoopBackOff") return lastEnd === "OOMKilled" ? "OOMKilled" : waiting;
  if (waiting !== undefined && IMAGE_ERRORS.has(waiting)) return waiting;
  // Started again after failing and not ready (yet): still in the kubelet's back-off, which grows with each crash.
  const failedBefore = (status?.lastState?.terminated?.exitCode ?? 0) !== 0 && lastEnd !== "OOMKilled";
  if (failedBefore && (status?.restartCount ?? 0) > 0 && !podReady(pod)) return "CrashLoopBackOff";
  return lastEnd ?? "";
}

/** The replica state `ps` shows for a pod. */
export function podState(pod: V1Pod): ReplicaState {
  if (pod.metadata?.deletionTimestamp !== undefined) return ReplicaState.STOPPING;
  if (pod.status?.phase === "Succeeded") return ReplicaState.SUCCEEDED;
  if (pod.status?.phase === "Failed") return ReplicaState.FAILED;
  const waiting = appContainer(pod)?.state?.waiting?.reason;
  if (waiting === "CrashLoopBackOff") return ReplicaState.CRASHED;
  if (waiting !== undefined && IMAGE_ERRORS.has(waiting)) return ReplicaState.FAILED;
  // Not ready yet, or not any more: Kubernetes keeps no record of which, and either way it takes no traffic.
  return podReady(pod) ? ReplicaState.UP : ReplicaState.STARTING;
}

/** The process type a pod of berth's runs, or undefined for pods that are no replica (release Jobs, foreign pods). */
export function podProcessType(pod: V1Pod): string | undefined {
  const processType = pod.metadata?.labels?.[LABEL.component];
  if (processType === undefined || pod.metadata?.labels?.["job-name"] !== undefined) return undefined;
  return routingClassOf(processType) === RoutingClass.RELEASE ? undefined : processType;
}

/** The pods of `app` that are replicas, oldest first. */
export function appPods(pods: Iterable<V1Pod>, app: string): V1Pod[] {
  return [...pods]
    .filter((pod) => pod.metadata?.labels?.[LABEL.name] === app && podProcessType(pod) !== undefined)
    .sort(
      (a, b) =>
        (dateOf(a.metadata?.creationTimestamp)?.getTime() ?? 0) - (dateOf(b.metadata?.creationTimestamp)?.getTime() ?? 0) ||
        a.metadata!.name!.localeCompare(b.metadata!.name!),
    );
}

/**
 * The ordinal of a StatefulSet's pod, `<set>-<ordinal>`: the replica number
 * its container derived (BERTH_RTC_REPLICA is it plus one, see
 * rtc-statefulset.ts), which a pod keeps across restarts and rollouts.
 */
function statefulSetOrdinal(pod: V1Pod): number | undefined {
  const owner = pod.metadata?.ownerReferences?.find((reference) => reference.controller === true && reference.kind === "StatefulSet");
  const name = pod.metadata?.name ?? "";
  if (owner === undefined || !name.startsWith(`${owner.name}-`)) return undefined;
  const suffix = name.slice(owner.name.length + 1);
  return /^(0|[1-9][0-9]*)$/.test(suffix) ? Number(suffix) : undefined;
}

/**
 * The replicas of an app from its pods: a StatefulSet's by their ordinal,
 * a Deployment's numbered per type in creation order, the zone of the pod's node (or the node's name where nodes carry
 * no zone), the pod IP and container port, and the reason it is not up.
 */
export function podReplicas(pods: readonly V1Pod[], zoneOfNode: (node: string) => string | undefined): ObservedReplica[] {
  const counts = new Map<string, number>();
  return pods.flatMap((pod) => {
    const processType = podProcessType(pod);
    if (processType === undefined) return [];
    const ordinal = statefulSetOrdinal(pod);
    const index = ordinal ?? counts.get(processType) ?? 0;
    if (ordinal === undefined) counts.set(processType, index + 1);
    const container = appContainer(pod);
    const node = pod.spec?.nodeName ?? "";
    const labels = pod.metadata?.labels ?? {};
    const port = pod.spec?.containers?.find((entry) => entry.name === processType)?.ports?.[0]?.containerPort ?? 0;
    return [
      {
        name: pod.metadata!.name!,
        app: labels[LABEL.name]!,
        processType,
        index,
        releaseVersion: Number(labels[LABEL.version]?.replace(/^v/, "") ?? 0) || 0,
        // The local engine's bookkeeping: on a cluster a restart is the restartedAt annotation, and the Deployment tracks it.
        restartGeneration: 0,
        state: podState(pod),
        ready: podReady(pod),
        restarts: container?.restartCount ?? 0,
        startedAt: dateOf(container?.state?.running?.startedAt) ?? null,
        zone: node === "" ? "" : (zoneOfNode(node) ?? node),
        host: pod.status?.podIP ?? "",
        port,
        runtimeId: pod.metadata?.uid ?? "",
        isolation: "kubernetes",
        lastExitReason: podReason(pod),
        createdAt: dateOf(pod.metadata?.creationTimestamp) ?? new Date(0),
      },
    ];
  });
}

/** Whether two observations of a replica differ in anything `ps` or the endpoints show. */
export function replicaChanged(before: ReplicaRecord, after: ObservedReplica): boolean {
  return (
    before.index !== after.index ||
    before.releaseVersion !== after.releaseVersion ||
    before.restartGeneration !== after.restartGeneration ||
    before.state !== after.state ||
    before.ready !== after.ready ||
    before.restarts !== after.restarts ||
    before.startedAt?.getTime() !== after.startedAt?.getTime() ||
    before.zone !== after.zone ||
    before.host !== after.host ||
    before.port !== after.port ||
    before.lastExitReason !== after.lastExitReason
  );
}

const ROUTABLE = new Set([RoutingClass.WEB, RoutingClass.TCP, RoutingClass.RTC]);

/**
 * The endpoints of an app's routable types: for web and tcp types, the
 * ready addresses its Services' EndpointSlices list (pod IP and target
 * port, as kube-proxy and ingress controllers route); `*-rtc` types have no
 * Service (each replica is reached on its own), so their ready pods are
 * listed directly. Every routable type of `processTypes` gets a set, empty
 * when nothing is ready, with the replica count `scale` gives it; an rtc
 * type with the route token `routeTokens` gives it, from which the router
 * makes its per-replica hostnames (empty while unknown: the router keeps
 * the hostnames it has).
 */
export function appEndpointSets(
  processTypes: readonly string[],
  scale: ReadonlyMap<string, number>,
  replicas: readonly ObservedReplica[],
  slices: Iterable<V1EndpointSlice>,
  routeTokens: ReadonlyMap<string, string> = new Map(),
): ProcessEndpointSet[] {
  const sets = new Map<string, ProcessEndpointSet>();
  const setOf = (processType: string) => {
    let set = sets.get(processType);
    if (set === undefined) {
      const rtcRouteToken = routeTokens.get(processType) ?? "";
      set = { processType, routingClass: routingClassOf(processType), endpoints: [], replicas: scale.get(processType) ?? 0, rtcRouteToken };
      sets.set(processType, set);
    }
    return set;
  };
  for (const processType of processTypes) if (ROUTABLE.has(routingClassOf(processType))) setOf(processType);
  const byName = new Map(replicas.map((replica) => [replica.name, replica]));
  const listed = new Set<string>();
  for (const slice of slices) {
    const port = slice.ports?.[0]?.port;
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const replica = endpoint.targetRef?.kind === "Pod" ? byName.get(endpoint.targetRef.name ?? "") : undefined;
      const host = endpoint.addresses[0];
      // `ready` is false for a terminating pod: the router lets it go while it drains.
      if (replica === undefined || host === undefined || endpoint.conditions?.ready !== true || listed.has(replica.name)) continue;
      listed.add(replica.name);
      setOf(replica.processType).endpoints.push({
        replica: replica.name,
        host,
        port,
        zone: endpoint.zone ?? replica.zone,
        releaseVersion: replica.releaseVersion,
        replicaIndex: replica.index + 1,
      });
    }
  }
  for (const replica of replicas) {
    // The router's per-replica Service of an rtc pod (its hostname's Ingress backend) lists it in a slice too.
    if (routingClassOf(replica.processType) !== RoutingClass.RTC || !replica.ready || replica.host === "" || replica.port === 0 || listed.has(replica.name)) {
      continue;
    }
    setOf(replica.processType).endpoints.push({
      replica: replica.name,
      host: replica.host,
      port: replica.port,
      zone: replica.zone,
      releaseVersion: replica.releaseVersion,
      replicaIndex: replica.index + 1,
    });
  }
  return [...sets.values()].filter((set) => ROUTABLE.has(set.routingClass));
}
