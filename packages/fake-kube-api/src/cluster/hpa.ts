import { field, isJsonObject, numberOr, type JsonObject } from "../patch.js";
import type { ResourceKind } from "../registry.js";
import { type Cluster, type Controller, keyOf, metaOf, now, ownKey, splitKey } from "./runtime.js";

/** Observed average utilization (percent of requests) per HPA key, set by tests in place of a metrics server. */
export type Utilization = Map<string, number>;

/**
 * The HorizontalPodAutoscaler controller. There is no metrics server, so
 * without an observed utilization (`api.setUtilization`) it only keeps the
 * target within min/max and reports ScalingActive False; with one it
 * computes desired = ceil(current × observed / target) for the first
 * Resource metric, as the real algorithm does, and scales the target
 * through its spec.replicas.
 */
export function hpaController(cluster: Cluster, utilization: Utilization): Controller {
  const { hpa: kind, deployment, replicaSet, statefulSet } = cluster.kinds;
  const targets: Record<string, ResourceKind> = { Deployment: deployment, ReplicaSet: replicaSet, StatefulSet: statefulSet };
  const hpasFor = (event: { object: JsonObject }) =>
    cluster
      .list(kind, String(metaOf(event.object).namespace))
      .filter(
        (hpa) =>
          field(hpa, "spec", "scaleTargetRef", "name") === metaOf(event.object).name && field(hpa, "spec", "scaleTargetRef", "kind") === event.object.kind,
      )
      .map(keyOf);
  return {
    name: "horizontal-pod-autoscaler",
    triggers: [{ kind, keys: ownKey }, ...Object.values(targets).map((target) => ({ kind: target, keys: hpasFor }))],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const hpa = cluster.get(kind, namespace, name);
      if (hpa === undefined) return undefined;
      const targetKind = targets[String(field(hpa, "spec", "scaleTargetRef", "kind"))];
      const target = targetKind && cluster.get(targetKind, namespace, String(field(hpa, "spec", "scaleTargetRef", "name")));
      const condition = (type: string, status: boolean, reason: string, message: string) => ({
        type,
        status: status ? "True" : "False",
        lastTransitionTime: now(),
        reason,
        message,
      });
      const previous = isJsonObject(hpa.status) ? hpa.status : {};
      const keepTimes = (conditions: JsonObject[]) =>
        conditions.map((entry) => {
          const before = (Array.isArray(previous.conditions) ? (previous.conditions as JsonObject[]) : []).find((c) => c.type === entry.type);
          return before && before.status === entry.status && before.reason === entry.reason ? before : entry;
        });
      if (target === undefined || targetKind === undefined) {
        cluster.updateStatus(
          kind,
          {
            ...hpa,
            status: {
              ...previous,
              conditions: keepTimes([condition("AbleToScale", false, "FailedGetScale", "the HPA controller was unable to get the target's current scale")]),
            },
          },
          "horizontal-pod-autoscaler",
        );
        return undefined;
      }
      const current = numberOr(field(target, "spec", "replicas"), 1);
      const min = numberOr(field(hpa, "spec", "minReplicas"), 1);
      const max = numberOr(field(hpa, "spec", "maxReplicas"), 1);
      const metrics = Array.isArray(field(hpa, "spec", "metrics")) ? (field(hpa, "spec", "metrics") as JsonObject[]) : [];
      const resource = metrics.find((metric) => metric.type === "Resource" && typeof field(metric, "resource", "target", "averageUtilization") === "number");
      const observed = utilization.get(key);
      const wanted =
        resource && observed !== undefined
          ? Math.ceil((current * observed) / numberOr(field(resource, "resource", "target", "averageUtilization"), 100))
          : current;
      const desired = current === 0 ? 0 : Math.min(max, Math.max(min, wanted));
      const limited = desired !== wanted;
      if (desired !== current)
        cluster.update(targetKind, { ...target, spec: { ...(target.spec as JsonObject), replicas: desired } }, "horizontal-pod-autoscaler");
      const status: JsonObject = {
        observedGeneration: metaOf(hpa).generation,
        currentReplicas: numberOr(field(target, "status", "replicas")),
        desiredReplicas: desired,
        ...(desired !== current ? { lastScaleTime: now() } : previous.lastScaleTime ? { lastScaleTime: previous.lastScaleTime } : {}),
        currentMetrics:
          resource && observed !== undefined
            ? [{ type: "Resource", resource: { name: field(resource, "resource", "name"), current: { averageUtilization: observed } } }]
            : [],
        conditions: keepTimes([
          condition("AbleToScale", true, "ReadyForNewScale", "recommended size matches current size"),
          resource && observed !== undefined
            ? condition("ScalingActive", true, "ValidMetricFound", "the HPA was able to successfully calculate a replica count")
            : condition(
                "ScalingActive",
                false,
                "FailedGetResourceMetric",
                "the HPA was unable to compute the replica count: no metrics returned from resource metrics API",
              ),
          limited
            ? condition(
                "ScalingLimited",
                true,
                wanted > max ? "TooManyReplicas" : "TooFewReplicas",
                `the desired replica count is ${wanted > max ? "more" : "less"} than the ${wanted > max ? "maximum" : "minimum"} replica count`,
              )
            : condition("ScalingLimited", false, "DesiredWithinRange", "the desired count is within the acceptable range"),
        ]),
      };
      cluster.updateStatus(kind, { ...hpa, status }, "horizontal-pod-autoscaler");
      return undefined;
    },
  };
}
