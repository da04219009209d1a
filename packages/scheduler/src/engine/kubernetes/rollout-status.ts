import type { KubernetesObject, V1Deployment, V1Job, V1StatefulSet } from "@kubernetes/client-node";

/** Where one Deployment's or StatefulSet's rollout stands, as `kubectl rollout status` judges it. */
export interface WorkloadRollout {
  /** The controller has seen the latest spec and every replica is updated and available; no old one is left. */
  done: boolean;
  /** The cluster itself gave up (Progressing=False, ProgressDeadlineExceeded). */
  deadlineExceeded: boolean;
  /** Grows as replicas of the new spec become available: a change here resets the progress deadline. */
  progress: number;
  /** For messages: e.g. `2 of 3 updated, 1 available`. */
  summary: string;
}

/** The rollout state of a Deployment from its spec, generation and status. */
export function deploymentRollout(deployment: V1Deployment): WorkloadRollout {
  const status = deployment.status ?? {};
  // A Deployment the HPA governs has no replicas in berth's configuration; the API server defaults it to 1.
  const desired = deployment.spec?.replicas ?? 1;
  const observed = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 1);
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  const progressing = status.conditions?.find((condition) => condition.type === "Progressing");
  return {
    done: observed && updated === desired && available === desired && total === desired,
    deadlineExceeded: observed && progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded",
    progress: observed ? updated + available : 0,
    summary: observed ? `${updated} of ${desired} updated, ${available} available, ${total} in all` : "spec not yet observed by the Deployment controller",
  };
}

/**
 * The rollout state of a StatefulSet (an rtc process's): done once the
 * controller has seen the latest spec, every replica at and above the
 * partition runs the update revision, and every replica is ready and
 * available; with no partition, once the current revision is the update
 * revision (which the controller sets when all pods are updated and ready).
 * A StatefulSet has no progress deadline of its own.
 */
export function statefulSetRollout(set: V1StatefulSet): WorkloadRollout {
  const status = set.status ?? { replicas: 0 };
  const desired = set.spec?.replicas ?? 1;
  const partition = set.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
  const observed = (status.observedGeneration ?? 0) >= (set.metadata?.generation ?? 1);
  const updated = status.updatedReplicas ?? 0;
  const ready = status.readyReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  const revised = partition > 0 ? updated >= desired - partition : status.updateRevision !== undefined && status.currentRevision === status.updateRevision;
  return {
    done: observed && revised && ready === desired && available === desired && total === desired,
    deadlineExceeded: false,
    progress: observed ? updated + available : 0,
    summary: observed
      ? `${updated} of ${desired} updated, ${ready} ready, ${available} available, ${total} in all`
      : "spec not yet observed by the StatefulSet controller",
  };
}

/** The kinds that run an app's processes, and how each one's rollout is judged: Deployments, and StatefulSets for rtc processes. */
export const WORKLOAD_KINDS: readonly { kind: string; plural: string; rollout: (object: KubernetesObject) => WorkloadRollout }[] = [
  { kind: "Deployment", plural: "deployments", rollout: (object) => deploymentRollout(object as V1Deployment) },
  { kind: "StatefulSet", plural: "statefulsets", rollout: (object) => statefulSetRollout(object as V1StatefulSet) },
];

/** How a Job ended, or undefined while it runs. */
export type JobOutcome = { succeeded: true } | { succeeded: false; timedOut: boolean; reason: string; message: string };

/** A Job's outcome from its terminal conditions (Complete or Failed). */
export function jobOutcome(job: V1Job): JobOutcome | undefined {
  const conditions = job.status?.conditions ?? [];
  if (conditions.some((condition) => condition.type === "Complete" && condition.status === "True")) return { succeeded: true };
  const failed = conditions.find((condition) => condition.type === "Failed" && condition.status === "True");
  if (failed === undefined) return undefined;
  return { succeeded: false, timedOut: failed.reason === "DeadlineExceeded", reason: failed.reason ?? "Failed", message: failed.message ?? "" };
}
