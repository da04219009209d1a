import { canonicalJson } from "@berth/kit/contract";
import { isJsonObject, type JsonObject } from "./patch.js";
import type { SchemaViolation } from "./validate.js";

/**
 * Fields a real API server refuses to change once an object exists, per
 * `apiVersion/kind` (from the validation of each kind in kube-apiserver).
 */
const immutablePaths: Record<string, readonly string[][]> = {
  "apps/v1/Deployment": [["spec", "selector"]],
  "apps/v1/ReplicaSet": [["spec", "selector"]],
  "apps/v1/StatefulSet": [
    ["spec", "selector"],
    ["spec", "serviceName"],
    ["spec", "volumeClaimTemplates"],
    ["spec", "podManagementPolicy"],
  ],
  "batch/v1/Job": [
    ["spec", "selector"],
    ["spec", "template"],
    ["spec", "completionMode"],
  ],
  "discovery.k8s.io/v1/EndpointSlice": [["addressType"]],
  "rbac.authorization.k8s.io/v1/RoleBinding": [["roleRef"]],
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": [["roleRef"]],
  "v1/PersistentVolumeClaim": [
    ["spec", "accessModes"],
    ["spec", "storageClassName"],
    ["spec", "volumeName"],
    ["spec", "selector"],
  ],
};

function at(object: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((value, key) => (isJsonObject(value) ? value[key] : undefined), object);
}

function changed(old: unknown, candidate: unknown): boolean {
  return canonicalJson(old ?? null) !== canonicalJson(candidate ?? null);
}

/** The pod spec without what a pod update may change (images, activeDeadlineSeconds, added tolerations). */
function podSpecShape(spec: unknown): unknown {
  if (!isJsonObject(spec)) return spec;
  const strip = (containers: unknown) =>
    Array.isArray(containers) ? containers.map((container) => (isJsonObject(container) ? { ...container, image: undefined } : container)) : containers;
  return { ...spec, containers: strip(spec.containers), initContainers: strip(spec.initContainers), activeDeadlineSeconds: undefined, tolerations: undefined };
}

/**
 * The immutable-field violations of an update from `old` to `candidate`,
 * worded like kube-apiserver (`spec.selector: Invalid value: ...: field is immutable`).
 */
export function immutableFieldViolations(old: JsonObject, candidate: JsonObject): SchemaViolation[] {
  const key = `${String(candidate.apiVersion)}/${String(candidate.kind)}`;
  const violations: SchemaViolation[] = [];
  for (const path of immutablePaths[key] ?? []) {
    if (changed(at(old, path), at(candidate, path)))
      violations.push({ field: path.join("."), message: `Invalid value: ${canonicalJson(at(candidate, path) ?? null)}: field is immutable` });
  }
  if (key === "v1/Service") {
    const clusterIP = at(old, ["spec", "clusterIP"]);
    if (clusterIP !== undefined && changed(clusterIP, at(candidate, ["spec", "clusterIP"])))
      violations.push({ field: "spec.clusterIP", message: "Invalid value: field is immutable" });
  }
  if ((key === "v1/Secret" || key === "v1/ConfigMap") && old.immutable === true) {
    for (const field of ["data", "stringData", "binaryData", "immutable"]) {
      if (changed(old[field], candidate[field])) violations.push({ field, message: "Forbidden: field is immutable when `immutable` is set" });
    }
  }
  if (key === "v1/Pod" && changed(podSpecShape(old.spec), podSpecShape(candidate.spec))) {
    violations.push({
      field: "spec",
      message:
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations`",
    });
  }
  return violations;
}
