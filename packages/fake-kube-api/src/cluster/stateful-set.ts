import { field, isJsonObject, numberOr, type JsonObject } from "../patch.js";
import { podTemplateHash } from "./deployment.js";
import { isActivePod, isPodAvailable, isPodReady, podFromTemplate } from "./replica-set.js";
import { type Cluster, type Controller, controllerOf, labelsOf, metaOf, ownerKeys, ownerReferenceTo, ownKey, splitKey } from "./runtime.js";

/** The label naming the revision (`<set>-<hash>`) a StatefulSet's pod was made from. */
export const REVISION_LABEL = "controller-revision-hash";

const manager = "kube-controller-manager";

/** The ordinal of `<set>-<ordinal>`, or undefined for a pod not named so. */
function ordinalOf(setName: string, pod: JsonObject): number | undefined {
  const name = String(metaOf(pod).name);
  const suffix = name.slice(setName.length + 1);
  return name.startsWith(`${setName}-`) && /^(0|[1-9][0-9]*)$/.test(suffix) ? Number(suffix) : undefined;
}

const isRunningAndReady = (pod: JsonObject) => isActivePod(pod) && field(pod, "status", "phase") === "Running" && isPodReady(pod);

/**
 * The StatefulSet controller: pods `<set>-0` … `<set>-<replicas-1>` with
 * stable names, created and removed in order (OrderedReady: each waits for
 * its predecessors to be Running and Ready; removal from the highest
 * ordinal) or all at once (Parallel); RollingUpdate replaces one pod at a
 * time from the highest ordinal down to `partition`, each once every pod is
 * Running and Ready (and available, with minReadySeconds), the pods below
 * the partition staying at the current revision; OnDelete replaces none.
 * Status: replicas, ready, available, current and updated replicas,
 * currentRevision and updateRevision (which become one when every pod is
 * updated and ready), observedGeneration. Revisions are `<set>-<hash of the
 * template>`, remembered in memory rather than stored as ControllerRevisions.
 */
export function statefulSetController(cluster: Cluster): Controller {
  const { statefulSet: kind, pod: podKind } = cluster.kinds;
  // By revision name: its pod template, for pods recreated below the partition at the current revision.
  const templates = new Map<string, JsonObject>();

  return {
    name: "statefulset",
    triggers: [
      { kind, keys: ownKey },
      { kind: podKind, keys: ownerKeys("StatefulSet") },
    ],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const set = cluster.get(kind, namespace, name);
      if (set === undefined || metaOf(set).deletionTimestamp !== undefined) return undefined;
      const replicas = numberOr(field(set, "spec", "replicas"), 1);
      const template = field(set, "spec", "template") as JsonObject;
      const updateRevision = `${name}-${podTemplateHash(template)}`;
      templates.set(updateRevision, template);
      const previous = isJsonObject(set.status) ? set.status : {};
      let currentRevision = typeof previous.currentRevision === "string" ? previous.currentRevision : updateRevision;
      const rollingUpdate = (field(set, "spec", "updateStrategy", "type") ?? "RollingUpdate") === "RollingUpdate";
      const partition = numberOr(field(set, "spec", "updateStrategy", "rollingUpdate", "partition"));
      const parallel = field(set, "spec", "podManagementPolicy") === "Parallel";
      const minReadySeconds = numberOr(field(set, "spec", "minReadySeconds"));
      const uid = metaOf(set).uid;
      const owned = () => cluster.list(podKind, namespace).filter((pod) => controllerOf(pod)?.uid === uid);

      // A pod that finished (Failed or Succeeded) is replaced under the same name.
      for (const pod of owned())
        if (metaOf(pod).deletionTimestamp === undefined && !isActivePod(pod)) cluster.remove(podKind, namespace, String(metaOf(pod).name));

      let pods = owned();
      const byOrdinal = new Map(pods.map((pod) => [ordinalOf(name, pod), pod]));
      const terminating = pods.some((pod) => metaOf(pod).deletionTimestamp !== undefined);
      for (let ordinal = 0; ordinal < replicas; ordinal++) {
        const pod = byOrdinal.get(ordinal);
        if (pod === undefined) {
          const revision = rollingUpdate && ordinal < partition ? currentRevision : updateRevision;
          const podName = `${name}-${ordinal}`;
          const made = podFromTemplate(templates.get(revision) ?? template, set, ownerReferenceTo(kind, set), {
            [REVISION_LABEL]: revision,
            "statefulset.kubernetes.io/pod-name": podName,
            "apps.kubernetes.io/pod-index": String(ordinal),
          });
          cluster.create(podKind, { ...made, metadata: { ...metaOf(made), name: podName } }, manager);
          if (!parallel) break;
        } else if (!parallel && !isRunningAndReady(pod)) break;
      }

      // Scaling down: the highest ordinals go, one at a time unless Parallel.
      const condemned = pods
        .filter((pod) => metaOf(pod).deletionTimestamp === undefined && !((ordinalOf(name, pod) ?? Number.POSITIVE_INFINITY) < replicas))
        .sort((a, b) => (ordinalOf(name, b) ?? Number.POSITIVE_INFINITY) - (ordinalOf(name, a) ?? Number.POSITIVE_INFINITY));
      for (const pod of parallel ? condemned : terminating ? [] : condemned.slice(0, 1)) cluster.remove(podKind, namespace, String(metaOf(pod).name));

      // Rolling update: once every wanted pod is there and healthy, the highest outdated one at or above the partition is replaced.
      pods = owned();
      const wanted = pods.filter((pod) => (ordinalOf(name, pod) ?? replicas) < replicas);
      const healthy = wanted.length === replicas && wanted.every((pod) => isRunningAndReady(pod) && isPodAvailable(pod, minReadySeconds));
      if (rollingUpdate && healthy) {
        const outdated = wanted
          .filter((pod) => ordinalOf(name, pod)! >= partition && labelsOf(pod)[REVISION_LABEL] !== updateRevision)
          .sort((a, b) => ordinalOf(name, b)! - ordinalOf(name, a)!)[0];
        if (outdated !== undefined) cluster.remove(podKind, namespace, String(metaOf(outdated).name));
      }

      const active = owned().filter(isActivePod);
      const count = (predicate: (pod: JsonObject) => boolean) => active.filter(predicate).length;
      const ready = count(isPodReady);
      const available = count((pod) => isPodAvailable(pod, minReadySeconds));
      const updated = count((pod) => labelsOf(pod)[REVISION_LABEL] === updateRevision);
      if (updated === replicas && ready === replicas && active.length === replicas) currentRevision = updateRevision;
      const status = {
        observedGeneration: metaOf(set).generation,
        replicas: active.length,
        readyReplicas: ready,
        availableReplicas: available,
        currentReplicas: count((pod) => labelsOf(pod)[REVISION_LABEL] === currentRevision),
        updatedReplicas: updated,
        currentRevision,
        updateRevision,
        collisionCount: 0,
      };
      cluster.updateStatus(kind, { ...set, status: { ...previous, ...status } }, manager);
      // Pods that are ready but not yet available become available with time alone.
      return ready > available ? minReadySeconds * 1000 : undefined;
    },
  };
}
