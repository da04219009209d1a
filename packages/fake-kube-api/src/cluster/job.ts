import { field, isJsonObject, numberOr, type JsonObject } from "../patch.js";
import { type Cluster, type Controller, controllerOf, metaOf, now, ownerKeys, ownerReferenceTo, ownKey, splitKey } from "./runtime.js";
import { isActivePod, isPodReady, podFromTemplate } from "./replica-set.js";

function finished(job: JsonObject): boolean {
  const conditions = field(job, "status", "conditions");
  return Array.isArray(conditions) && conditions.some((entry: JsonObject) => (entry.type === "Complete" || entry.type === "Failed") && entry.status === "True");
}

/**
 * The Job controller: runs up to `parallelism` pods until `completions`
 * succeed (Complete, with SuccessCriteriaMet) or failures pass
 * `backoffLimit` or `activeDeadlineSeconds` passes (Failed, with
 * FailureTarget; remaining pods deleted). Container restarts of
 * restartPolicy OnFailure pods count as failures, as on a real cluster.
 */
export function jobController(cluster: Cluster): Controller {
  const { job: kind, pod: podKind } = cluster.kinds;
  const manager = "job-controller";
  return {
    name: "job",
    triggers: [
      { kind, keys: ownKey },
      { kind: podKind, keys: ownerKeys("Job") },
    ],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const job = cluster.get(kind, namespace, name);
      if (job === undefined || finished(job) || field(job, "spec", "suspend") === true) return undefined;
      const uid = String(metaOf(job).uid);
      const pods = cluster.list(podKind, namespace).filter((pod) => controllerOf(pod)?.uid === uid);
      const previous = isJsonObject(job.status) ? job.status : {};
      const succeeded = Math.max(numberOr(previous.succeeded), pods.filter((pod) => field(pod, "status", "phase") === "Succeeded").length);
      const restarts = pods.reduce(
        (sum, pod) =>
          sum +
          (Array.isArray(field(pod, "status", "containerStatuses"))
            ? (field(pod, "status", "containerStatuses") as JsonObject[]).reduce((n, status) => n + numberOr(status.restartCount), 0)
            : 0),
        0,
      );
      const failed = Math.max(numberOr(previous.failed), pods.filter((pod) => field(pod, "status", "phase") === "Failed").length);
      const active = pods.filter(isActivePod);
      const completions = numberOr(field(job, "spec", "completions"), 1);
      const parallelism = numberOr(field(job, "spec", "parallelism"), 1);
      const backoffLimit = numberOr(field(job, "spec", "backoffLimit"), 6);
      const startTime = typeof previous.startTime === "string" ? previous.startTime : now();
      const deadline = field(job, "spec", "activeDeadlineSeconds");
      const overdue = typeof deadline === "number" && Date.parse(startTime) + deadline * 1000 <= Date.now();
      const condition = (type: string, reason?: string, message?: string) => ({
        type,
        status: "True",
        lastProbeTime: now(),
        lastTransitionTime: now(),
        ...(reason ? { reason, message } : {}),
      });
      const status: JsonObject = {
        ...previous,
        startTime,
        succeeded,
        failed,
        terminating: pods.filter((pod) => metaOf(pod).deletionTimestamp !== undefined).length,
        uncountedTerminatedPods: {},
      };
      const failure =
        failed + restarts > backoffLimit
          ? ["BackoffLimitExceeded", "Job has reached the specified backoff limit"]
          : overdue
            ? ["DeadlineExceeded", "Job was active longer than specified deadline"]
            : undefined;
      if (failure) {
        for (const pod of active) cluster.remove(podKind, namespace, String(metaOf(pod).name));
        Object.assign(status, {
          active: 0,
          ready: 0,
          conditions: [condition("FailureTarget", failure[0], failure[1]), condition("Failed", failure[0], failure[1])],
        });
      } else if (succeeded >= completions) {
        Object.assign(status, {
          active: 0,
          ready: 0,
          completionTime: now(),
          conditions: [
            condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
            condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
          ],
        });
      } else {
        const wanted = Math.min(parallelism, completions - succeeded);
        const template = field(job, "spec", "template") as JsonObject;
        const labels = { "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name };
        for (let i = active.length; i < wanted; i++)
          active.push(cluster.create(podKind, podFromTemplate(template, job, ownerReferenceTo(kind, job), labels), manager));
        Object.assign(status, { active: active.length, ready: active.filter(isPodReady).length });
      }
      cluster.updateStatus(kind, { ...job, status }, manager);
      return typeof deadline === "number" && !failure ? Math.max(10, Date.parse(startTime) + deadline * 1000 - Date.now()) : undefined;
    },
  };
}
