import { createHash } from "node:crypto";
import { canonicalJson } from "@berth/kit/contract";
import { field, isJsonObject, numberOr, type JsonObject } from "../patch.js";
import type { ChangeEvent } from "../watch.js";
import { type Cluster, type Controller, controllerOf, metaOf, now, ownerKeys, ownerReferenceTo, ownKey, splitKey } from "./runtime.js";

const revisionAnnotation = "deployment.kubernetes.io/revision";

/** The pod-template-hash label value: a hash of the template, encoded like Kubernetes' SafeEncodeString. */
export function podTemplateHash(template: unknown): string {
  const hash = createHash("sha256").update(canonicalJson(template)).digest().readUInt32BE(0);
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return [...String(hash)].map((digit) => alphabet[digit.charCodeAt(0) % alphabet.length]).join("");
}

/**
 * Resolves maxSurge/maxUnavailable (an int or a percentage of `replicas`):
 * surge rounds up, unavailable rounds down, and both zero means one may be
 * unavailable, as in the deployment controller's ResolveFenceposts.
 */
export function resolveFenceposts(maxSurge: unknown, maxUnavailable: unknown, replicas: number): { surge: number; unavailable: number } {
  const resolve = (value: unknown, fallback: string, roundUp: boolean) => {
    const raw = value ?? fallback;
    if (typeof raw === "number") return raw;
    const percent = Number(String(raw).replace(/%$/, ""));
    const exact = (percent * replicas) / 100;
    return roundUp ? Math.ceil(exact) : Math.floor(exact);
  };
  const surge = resolve(maxSurge, "25%", true);
  const unavailable = resolve(maxUnavailable, "25%", false);
  return { surge, unavailable: surge === 0 && unavailable === 0 ? 1 : unavailable };
}

function revisionOf(replicaSet: JsonObject): number {
  const annotations = metaOf(replicaSet).annotations;
  return Number(isJsonObject(annotations) ? (annotations[revisionAnnotation] ?? 0) : 0);
}

const specReplicas = (replicaSet: JsonObject) => numberOr(field(replicaSet, "spec", "replicas"), 1);
const statusOf = (replicaSet: JsonObject, name: string) => numberOr(field(replicaSet, "status", name));
const oldestFirst = (a: JsonObject, b: JsonObject) =>
  String(metaOf(a).creationTimestamp).localeCompare(String(metaOf(b).creationTimestamp)) || revisionOf(a) - revisionOf(b);

/**
 * The Deployment controller: one ReplicaSet per pod template (the current
 * one gets the highest revision, also on rollback), RollingUpdate honoring
 * maxSurge/maxUnavailable or Recreate, old ReplicaSets pruned beyond
 * revisionHistoryLimit, and the status kubectl rollout status reads
 * (observedGeneration, updated/ready/available replicas, Available and
 * Progressing conditions including ProgressDeadlineExceeded).
 */
export function deploymentController(cluster: Cluster): Controller {
  const { deployment: kind, replicaSet: replicaSetKind, pod: podKind } = cluster.kinds;
  const manager = "kube-controller-manager";

  // Recreate waits for the old pods themselves, terminating ones included (the
  // real controller's oldPodsRunning): so a pod change of an owned ReplicaSet
  // wakes its Deployment.
  const deploymentKeysOfPod = (event: ChangeEvent): string[] => {
    const owner = controllerOf(event.object);
    const namespace = String(metaOf(event.object).namespace);
    const replicaSet = owner?.kind === "ReplicaSet" ? cluster.get(replicaSetKind, namespace, owner.name) : undefined;
    return replicaSet === undefined ? [] : ownerKeys("Deployment")({ ...event, object: replicaSet });
  };
  const podsRunning = (namespace: string, replicaSets: JsonObject[]) => {
    const uids = new Set(replicaSets.map((replicaSet) => metaOf(replicaSet).uid));
    return cluster
      .list(podKind, namespace)
      .some((pod) => uids.has(controllerOf(pod)?.uid ?? "") && !["Succeeded", "Failed"].includes(String(field(pod, "status", "phase"))));
  };

  const scale = (replicaSet: JsonObject, replicas: number, deployment: JsonObject, surge: number) => {
    const desired = numberOr(field(deployment, "spec", "replicas"), 1);
    const annotations = {
      ...(isJsonObject(metaOf(replicaSet).annotations) ? (metaOf(replicaSet).annotations as JsonObject) : {}),
      "deployment.kubernetes.io/desired-replicas": String(desired),
      "deployment.kubernetes.io/max-replicas": String(desired + surge),
    };
    return cluster.update(
      replicaSetKind,
      { ...replicaSet, metadata: { ...metaOf(replicaSet), annotations }, spec: { ...(replicaSet.spec as JsonObject), replicas } },
      manager,
    );
  };

  return {
    name: "deployment",
    triggers: [
      { kind, keys: ownKey },
      { kind: replicaSetKind, keys: ownerKeys("Deployment") },
      { kind: podKind, keys: deploymentKeysOfPod },
    ],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      let deployment = cluster.get(kind, namespace, name);
      if (deployment === undefined || metaOf(deployment).deletionTimestamp !== undefined) return undefined;
      const uid = metaOf(deployment).uid;
      const replicas = numberOr(field(deployment, "spec", "replicas"), 1);
      const template = field(deployment, "spec", "template") as JsonObject;
      const hash = podTemplateHash(template);
      let owned = cluster.list(replicaSetKind, namespace).filter((replicaSet) => controllerOf(replicaSet)?.uid === uid);
      let current = owned.find((replicaSet) => (metaOf(replicaSet).labels as Record<string, string> | undefined)?.["pod-template-hash"] === hash);
      const maxOldRevision = Math.max(0, ...owned.filter((replicaSet) => replicaSet !== current).map(revisionOf));
      const strategy = field(deployment, "spec", "strategy");
      const recreate = field(strategy, "type") === "Recreate";
      const { surge, unavailable } = recreate
        ? { surge: 0, unavailable: replicas }
        : resolveFenceposts(field(strategy, "rollingUpdate", "maxSurge"), field(strategy, "rollingUpdate", "maxUnavailable"), replicas);
      let progressed = false;
      const paused = field(deployment, "spec", "paused") === true;

      if (!paused) {
        if (current === undefined) {
          const templateMetadata = isJsonObject(template.metadata) ? template.metadata : {};
          const labels = { ...(isJsonObject(templateMetadata.labels) ? templateMetadata.labels : {}), "pod-template-hash": hash };
          const selector = field(deployment, "spec", "selector") as JsonObject;
          current = cluster.create(
            replicaSetKind,
            {
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              metadata: {
                name: `${name}-${hash}`,
                namespace,
                labels,
                annotations: { [revisionAnnotation]: String(maxOldRevision + 1) },
                ownerReferences: [ownerReferenceTo(kind, deployment)],
              },
              spec: {
                replicas: 0,
                minReadySeconds: numberOr(field(deployment, "spec", "minReadySeconds")),
                selector: { ...selector, matchLabels: { ...(isJsonObject(selector.matchLabels) ? selector.matchLabels : {}), "pod-template-hash": hash } },
                template: { ...template, metadata: { ...templateMetadata, labels } },
              },
            },
            manager,
          );
          owned = [...owned, current];
          progressed = true;
        } else if (revisionOf(current) <= maxOldRevision) {
          // A rollback to an older template makes its ReplicaSet the newest revision again.
          current = cluster.update(
            replicaSetKind,
            {
              ...current,
              metadata: {
                ...metaOf(current),
                annotations: { ...(metaOf(current).annotations as JsonObject), [revisionAnnotation]: String(maxOldRevision + 1) },
              },
            },
            manager,
          );
        }
        const newSet = current;
        const old = owned.filter((replicaSet) => metaOf(replicaSet).uid !== metaOf(newSet).uid).sort(oldestFirst);
        if (recreate) {
          const oldRunning = old.some((replicaSet) => specReplicas(replicaSet) > 0 || statusOf(replicaSet, "replicas") > 0) || podsRunning(namespace, old);
          for (const replicaSet of old) if (specReplicas(replicaSet) > 0) scale(replicaSet, 0, deployment, 0);
          if (!oldRunning && specReplicas(newSet) !== replicas) {
            scale(newSet, replicas, deployment, 0);
            progressed = true;
          }
        } else {
          const all = [newSet, ...old];
          const total = all.reduce((sum, replicaSet) => sum + specReplicas(replicaSet), 0);
          // Scale up the new ReplicaSet within maxSurge.
          const scaleUpTo = specReplicas(newSet) >= replicas ? replicas : Math.min(replicas, specReplicas(newSet) + Math.max(0, replicas + surge - total));
          if (scaleUpTo !== specReplicas(newSet)) {
            current = scale(newSet, scaleUpTo, deployment, surge);
            progressed = true;
          } else {
            // Scale old ReplicaSets down within maxUnavailable: unhealthy replicas first, then available ones.
            const minAvailable = replicas - unavailable;
            const newUnavailable = specReplicas(newSet) - statusOf(newSet, "availableReplicas");
            let budget = total - minAvailable - newUnavailable;
            const live = old.map((replicaSet) => ({ replicaSet, replicas: specReplicas(replicaSet) }));
            for (const entry of live) {
              if (budget <= 0) break;
              const unhealthy = entry.replicas - statusOf(entry.replicaSet, "availableReplicas");
              const down = Math.min(budget, Math.max(0, unhealthy));
              entry.replicas -= down;
              budget -= down;
            }
            const availableNow = all.reduce((sum, replicaSet) => sum + statusOf(replicaSet, "availableReplicas"), 0);
            let more = Math.max(0, availableNow - minAvailable);
            for (const entry of live) {
              if (more <= 0) break;
              const down = Math.min(entry.replicas, more);
              entry.replicas -= down;
              more -= down;
            }
            for (const entry of live) {
              if (entry.replicas !== specReplicas(entry.replicaSet)) {
                scale(entry.replicaSet, entry.replicas, deployment, surge);
                progressed = true;
              }
            }
            // A newer ReplicaSet larger than wanted (scaled down Deployment) shrinks directly.
            if (specReplicas(newSet) > replicas) scale(newSet, replicas, deployment, surge);
          }
        }
        // revisionHistoryLimit: drop the oldest empty ReplicaSets beyond the limit.
        const limit = numberOr(field(deployment, "spec", "revisionHistoryLimit"), 10);
        const empty = old.filter((replicaSet) => specReplicas(replicaSet) === 0 && statusOf(replicaSet, "replicas") === 0);
        for (const replicaSet of empty.slice(0, Math.max(0, empty.length - limit))) cluster.remove(replicaSetKind, namespace, String(metaOf(replicaSet).name));
      }

      // Status from the ReplicaSets as they are now.
      owned = cluster.list(replicaSetKind, namespace).filter((replicaSet) => controllerOf(replicaSet)?.uid === uid);
      const newest = owned.find((replicaSet) => metaOf(replicaSet).uid === metaOf(current ?? {}).uid);
      const sum = (name: string) => owned.reduce((total, replicaSet) => total + statusOf(replicaSet, name), 0);
      const previous = isJsonObject(deployment.status) ? deployment.status : {};
      const status: JsonObject = {
        observedGeneration: metaOf(deployment).generation,
        replicas: sum("replicas"),
        updatedReplicas: newest ? statusOf(newest, "replicas") : 0,
        readyReplicas: sum("readyReplicas"),
        availableReplicas: sum("availableReplicas"),
        unavailableReplicas: Math.max(0, replicas - sum("availableReplicas")),
      };
      progressed ||=
        numberOr(status.updatedReplicas) > numberOr(previous.updatedReplicas) ||
        numberOr(status.readyReplicas) > numberOr(previous.readyReplicas) ||
        numberOr(status.availableReplicas) > numberOr(previous.availableReplicas);
      const complete =
        numberOr(status.updatedReplicas) === replicas && numberOr(status.replicas) === replicas && numberOr(status.availableReplicas) === replicas;
      const conditions = Array.isArray(previous.conditions) ? (previous.conditions as JsonObject[]) : [];
      const setCondition = (type: string, value: boolean, reason: string, message: string, touch: boolean) => {
        const before = conditions.find((entry) => entry.type === type);
        const same = before?.status === (value ? "True" : "False") && before?.reason === reason;
        const time = now();
        return {
          type,
          status: value ? "True" : "False",
          lastUpdateTime: same && !touch ? before!.lastUpdateTime : time,
          lastTransitionTime: before?.status === (value ? "True" : "False") ? before.lastTransitionTime : time,
          reason,
          message,
        };
      };
      const newName = String(metaOf(newest ?? {}).name);
      const deadline = numberOr(field(deployment, "spec", "progressDeadlineSeconds"), 600);
      const progressing = conditions.find((entry) => entry.type === "Progressing");
      const lastProgress = Date.parse(String(progressing?.lastUpdateTime ?? metaOf(deployment).creationTimestamp));
      let progressingCondition: JsonObject;
      let recheckMs: number | undefined;
      if (paused) progressingCondition = setCondition("Progressing", false, "DeploymentPaused", "Deployment is paused", false);
      else if (complete)
        progressingCondition = setCondition("Progressing", true, "NewReplicaSetAvailable", `ReplicaSet "${newName}" has successfully progressed.`, false);
      else if (progressed || progressing === undefined || progressing.reason === "NewReplicaSetAvailable" || progressing.reason === "DeploymentPaused") {
        progressingCondition = setCondition("Progressing", true, "ReplicaSetUpdated", `ReplicaSet "${newName}" is progressing.`, true);
        recheckMs = deadline * 1000 + 10;
      } else if (progressing.reason === "ProgressDeadlineExceeded" || Date.now() >= lastProgress + deadline * 1000)
        progressingCondition = setCondition("Progressing", false, "ProgressDeadlineExceeded", `ReplicaSet "${newName}" has timed out progressing.`, false);
      else {
        progressingCondition = progressing;
        recheckMs = lastProgress + deadline * 1000 - Date.now() + 10;
      }
      const availableEnough = numberOr(status.availableReplicas) >= replicas - unavailable;
      status.conditions = [
        setCondition(
          "Available",
          availableEnough,
          availableEnough ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
          availableEnough ? "Deployment has minimum availability." : "Deployment does not have minimum availability.",
          false,
        ),
        progressingCondition,
      ];
      const revision = newest ? String(revisionOf(newest)) : undefined;
      const annotations = isJsonObject(metaOf(deployment).annotations) ? (metaOf(deployment).annotations as JsonObject) : {};
      if (revision !== undefined && annotations[revisionAnnotation] !== revision) {
        deployment = cluster.update(
          kind,
          { ...deployment, metadata: { ...metaOf(deployment), annotations: { ...annotations, [revisionAnnotation]: revision } } },
          manager,
        );
      }
      cluster.updateStatus(kind, { ...deployment, status }, manager);
      return recheckMs;
    },
  };
}
