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
const builtInGroups = new Set(["", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "discovery.k8s.io", "rbac.authorization.k8s.io", "storage.k8s.io", "coordination.k8s.io", "scheduling.k8s.io", "node.k8s.io", "events.k8s.io"]);

/** Whether the kind belongs to a group served natively by kube-apiserver (not a custom resource). */
export function isBuiltIn(kind: ResourceKind): boolean {
  return builtInGroups.has(kind.group);
}

function core(kind: string, plural: string, namespaced: boolean, statusSubresource = false): ResourceKind {
  return { group: "", version: "v1", kind, plural, namespaced, statusSubresource };
}

/** The kinds berth emits, registered on every fake server. */
export const defaultKinds: readonly ResourceKind[] = [
  core("Namespace", "namespaces", false, true),
  core("Service", "services", true, true),
  core("ConfigMap", "configmaps", true),
  core("Secret", "secrets", true),
  core("Pod", "pods", true, true),
  core("Endpoints", "endpoints", true),
  core("ServiceAccount", "serviceaccounts", true),
  core("Event", "events", true),
  { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, statusSubresource: true },
  { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, statusSubresource: true },
  { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", namespaced: true, statusSubresource: true },
  { group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: true, statusSubresource: true },
  { group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: true, statusSubresource: true },
  { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses", namespaced: true, statusSubresource: true },
  { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true },
  { group: "networking.k8s.io", version: "v1", kind: "IngressClass", plural: "ingressclasses", namespaced: false },
  { group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices", namespaced: true },
  { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true },
  { group: "gateway.networking.k8s.io", version: "v1", kind: "Gateway", plural: "gateways", namespaced: true, statusSubresource: true },
  { group: "gateway.networking.k8s.io", version: "v1", kind: "HTTPRoute", plural: "httproutes", namespaced: true, statusSubresource: true },
  { group: "gateway.networking.k8s.io", version: "v1", kind: "GatewayClass", plural: "gatewayclasses", namespaced: false, statusSubresource: true },
  { group: "cert-manager.io", version: "v1", kind: "Certificate", plural: "certificates", namespaced: true, statusSubresource: true },
  { group: "cert-manager.io", version: "v1", kind: "Issuer", plural: "issuers", namespaced: true, statusSubresource: true },
  { group: "cert-manager.io", version: "v1", kind: "ClusterIssuer", plural: "clusterissuers", namespaced: false, statusSubresource: true },
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
