/** A REST resource the fake API server serves: one kind in one group/version. */
export interface ResourceKind {
  /** API group; "" for the core group served under /api/v1. */
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural used in URLs, e.g. "deployments". */
  plural: string;
  namespaced: boolean;
  /** Whether writes to the main resource ignore `.status` (a `/status` subresource exists). */
  statusSubresource?: boolean;
  shortNames?: string[];
  /** Groupings such as "all" that `kubectl get all` expands. */
  categories?: string[];
  /** Whether the kind serves the `/scale` subresource (autoscaling/v1 Scale), as workload controllers do. */
  scaleSubresource?: boolean;
}

/** The group/version string an object carries in `apiVersion`. */
export function apiVersionOf(kind: Pick<ResourceKind, "group" | "version">): string {
  return kind.group === "" ? kind.version : `${kind.group}/${kind.version}`;
}

/** "deployments.apps" or "configmaps": how a real API server names a resource in messages. */
export function qualifiedResource(kind: ResourceKind): string {
  return kind.group === "" ? kind.plural : `${kind.plural}.${kind.group}`;
}

/** "Deployment.apps" or "ConfigMap": how a real API server names a kind in validation messages. */
export function qualifiedKind(kind: ResourceKind): string {
  return kind.group === "" ? kind.kind : `${kind.kind}.${kind.group}`;
}

/**
 * Groups compiled into a real kube-apiserver. Their lists carry items without
 * apiVersion/kind, unlike custom resources; copying that quirk keeps client
 * code honest.
 */
const builtInGroups = new Set([
  "",
  "apps",
  "batch",
  "autoscaling",
  "policy",
  "networking.k8s.io",
  "discovery.k8s.io",
  "rbac.authorization.k8s.io",
  "storage.k8s.io",
  "coordination.k8s.io",
  "scheduling.k8s.io",
  "node.k8s.io",
  "events.k8s.io",
]);

/** Whether the kind belongs to a group served natively by kube-apiserver (not a custom resource). */
export function isBuiltIn(kind: ResourceKind): boolean {
  return builtInGroups.has(kind.group);
}

function core(kind: string, plural: string, namespaced: boolean, extra: Partial<ResourceKind> = {}): ResourceKind {
  return { group: "", version: "v1", kind, plural, namespaced, ...extra };
}

function grouped(group: string, version: string, kind: string, plural: string, namespaced: boolean, extra: Partial<ResourceKind> = {}): ResourceKind {
  return { group, version, kind, plural, namespaced, ...extra };
}

const all = ["all"];

/** The kinds berth emits (and a real cluster's controllers make), registered on every fake server; shortNames and categories as kube-apiserver serves them. */
export const defaultKinds: readonly ResourceKind[] = [
  core("Namespace", "namespaces", false, { statusSubresource: true, shortNames: ["ns"] }),
  core("Node", "nodes", false, { statusSubresource: true, shortNames: ["no"] }),
  core("Service", "services", true, { statusSubresource: true, shortNames: ["svc"], categories: all }),
  core("ConfigMap", "configmaps", true, { shortNames: ["cm"] }),
  core("Secret", "secrets", true),
  core("Pod", "pods", true, { statusSubresource: true, shortNames: ["po"], categories: all }),
  core("Endpoints", "endpoints", true, { shortNames: ["ep"] }),
  core("ServiceAccount", "serviceaccounts", true, { shortNames: ["sa"] }),
  core("PersistentVolumeClaim", "persistentvolumeclaims", true, { statusSubresource: true, shortNames: ["pvc"] }),
  core("Event", "events", true, { shortNames: ["ev"] }),
  grouped("apps", "v1", "Deployment", "deployments", true, { statusSubresource: true, scaleSubresource: true, shortNames: ["deploy"], categories: all }),
  grouped("apps", "v1", "StatefulSet", "statefulsets", true, { statusSubresource: true, scaleSubresource: true, shortNames: ["sts"], categories: all }),
  grouped("apps", "v1", "ReplicaSet", "replicasets", true, { statusSubresource: true, scaleSubresource: true, shortNames: ["rs"], categories: all }),
  grouped("batch", "v1", "Job", "jobs", true, { statusSubresource: true, categories: all }),
  grouped("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, { statusSubresource: true, shortNames: ["hpa"], categories: all }),
  grouped("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, { statusSubresource: true, shortNames: ["pdb"] }),
  grouped("networking.k8s.io", "v1", "Ingress", "ingresses", true, { statusSubresource: true, shortNames: ["ing"] }),
  grouped("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, { shortNames: ["netpol"] }),
  grouped("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false),
  grouped("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true),
  grouped("coordination.k8s.io", "v1", "Lease", "leases", true),
  grouped("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
  grouped("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true),
  grouped("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false),
  grouped("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false),
  grouped("gateway.networking.k8s.io", "v1", "Gateway", "gateways", true, { statusSubresource: true }),
  grouped("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", true, { statusSubresource: true }),
  grouped("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", false, { statusSubresource: true }),
  grouped("cert-manager.io", "v1", "Certificate", "certificates", true, { statusSubresource: true, shortNames: ["cert", "certs"] }),
  grouped("cert-manager.io", "v1", "Issuer", "issuers", true, { statusSubresource: true }),
  grouped("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers", false, { statusSubresource: true }),
];

/** The set of kinds one fake server knows, looked up by URL plural or by apiVersion/kind. */
export interface KindRegistry {
  /** Adds a kind; replaces an earlier registration of the same group/version/plural. */
  register(kind: ResourceKind): void;
  byPlural(group: string, version: string, plural: string): ResourceKind | undefined;
  byKind(apiVersion: string, kind: string): ResourceKind | undefined;
  /** Every registered kind, in registration order. */
  all(): ResourceKind[];
}

/** Creates a registry holding `defaultKinds` plus `extra`. */
export function createKindRegistry(extra: readonly ResourceKind[] = []): KindRegistry {
  const kinds = new Map<string, ResourceKind>();
  const pluralKey = (group: string, version: string, plural: string) => `${group}/${version}/${plural}`;
  const registry: KindRegistry = {
    register(kind) {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(kind.plural)) {
        throw new Error(`plural ${JSON.stringify(kind.plural)} must be a lower-case DNS label`);
      }
      kinds.set(pluralKey(kind.group, kind.version, kind.plural), { ...kind });
    },
    byPlural(group, version, plural) {
      return kinds.get(pluralKey(group, version, plural));
    },
    byKind(apiVersion, kind) {
      return [...kinds.values()].find((k) => k.kind === kind && apiVersionOf(k) === apiVersion);
    },
    all() {
      return [...kinds.values()];
    },
  };
  for (const kind of [...defaultKinds, ...extra]) registry.register(kind);
  return registry;
}
