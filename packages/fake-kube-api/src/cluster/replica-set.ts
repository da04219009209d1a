import { field, isJsonObject, type JsonObject } from "../patch.js";
import { type Cluster, type Controller, controllerOf, metaOf, ownerKeys, ownerReferenceTo, ownKey, randomSuffix, splitKey } from "./runtime.js";

/** Whether a pod's Ready condition is True. */
export function isPodReady(pod: JsonObject): boolean {
  const conditions = field(pod, "status", "conditions");
  return Array.isArray(conditions) && conditions.some((entry: JsonObject) => entry.type === "Ready" && entry.status === "True");
}

/** Ready for at least `minReadySeconds` (counted from the Ready condition's transition). */
export function isPodAvailable(pod: JsonObject, minReadySeconds: number, at = Date.now()): boolean {
  if (!isPodReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const ready = (field(pod, "status", "conditions") as JsonObject[]).find((entry) => entry.type === "Ready");
  return Date.parse(String(ready?.lastTransitionTime)) + minReadySeconds * 1000 <= at;
}

/** Pods a controller counts as its replicas: not finished, not being deleted. */
export function isActivePod(pod: JsonObject): boolean {
  const phase = field(pod, "status", "phase");
  return metaOf(pod).deletionTimestamp === undefined && phase !== "Succeeded" && phase !== "Failed";
}

/** A new pod from a workload's template, owned by `owner`. */
export function podFromTemplate(template: JsonObject, owner: JsonObject, ownerReference: JsonObject, extraLabels: Record<string, string> = {}): JsonObject {
  const templateMetadata = isJsonObject(template.metadata) ? template.metadata : {};
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...templateMetadata,
      name: `${String(metaOf(owner).name)}-${randomSuffix()}`,
      namespace: metaOf(owner).namespace,
      labels: { ...(isJsonObject(templateMetadata.labels) ? templateMetadata.labels : {}), ...extraLabels },
      ownerReferences: [ownerReference],
    },
    spec: structuredClone(template.spec),
  };
}

/**
 * The ReplicaSet controller: keeps `spec.replicas` active pods from the
 * template, deleting the least useful extras first (unscheduled, pending,
 * not ready, newest), and reports replicas/ready/available in status.
 */
export function replicaSetController(cluster: Cluster): Controller {
  const { replicaSet: kind, pod: podKind } = cluster.kinds;
  return {
    name: "replicaset",
    triggers: [
      { kind, keys: ownKey },
      { kind: podKind, keys: ownerKeys("ReplicaSet") },
    ],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const replicaSet = cluster.get(kind, namespace, name);
      if (replicaSet === undefined || metaOf(replicaSet).deletionTimestamp !== undefined) return undefined;
      const uid = metaOf(replicaSet).uid;
      const owned = cluster.list(podKind, namespace).filter((pod) => controllerOf(pod)?.uid === uid);
      const active = owned.filter(isActivePod);
      const wanted = Number(field(replicaSet, "spec", "replicas") ?? 1);
      const minReadySeconds = Number(field(replicaSet, "spec", "minReadySeconds") ?? 0);
      if (active.length < wanted) {
        const template = field(replicaSet, "spec", "template") as JsonObject;
        for (let i = active.length; i < wanted; i++)
          cluster.create(podKind, podFromTemplate(template, replicaSet, ownerReferenceTo(kind, replicaSet)), "kube-controller-manager");
      } else if (active.length > wanted) {
        const rank = (pod: JsonObject) => [
          field(pod, "spec", "nodeName") === undefined ? 0 : 1,
          field(pod, "status", "phase") === "Running" ? 1 : 0,
          isPodReady(pod) ? 1 : 0,
        ];
        const doomed = [...active].sort((a, b) => {
          const [ra, rb] = [rank(a), rank(b)];
          return (
            ra[0]! - rb[0]! || ra[1]! - rb[1]! || ra[2]! - rb[2]! || String(metaOf(b).creationTimestamp).localeCompare(String(metaOf(a).creationTimestamp))
          );
        });
        for (const pod of doomed.slice(0, active.length - wanted)) cluster.remove(podKind, namespace, String(metaOf(pod).name));
      }
      const available = active.filter((pod) => isPodAvailable(pod, minReadySeconds)).length;
      const ready = active.filter(isPodReady).length;
      const status = {
        replicas: active.length,
        fullyLabeledReplicas: active.length,
        readyReplicas: ready,
        availableReplicas: available,
        observedGeneration: metaOf(replicaSet).generation,
      };
      cluster.updateStatus(
        kind,
        { ...replicaSet, status: { ...(isJsonObject(replicaSet.status) ? replicaSet.status : {}), ...status } },
        "kube-controller-manager",
      );
      // Pods that are ready but not yet available become available with time alone.
      return ready > available ? minReadySeconds * 1000 : undefined;
    },
  };
}
