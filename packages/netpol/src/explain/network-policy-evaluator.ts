import { BlockList, isIPv6 } from "node:net";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyPort } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort";
import type { IIoK8sApimachineryPkgApisMetaV1LabelSelector as LabelSelector } from "@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector";

/** A pod as NetworkPolicies see it: where it is, its labels, its address and its named ports. */
export interface PolicyPod {
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  ip: string;
  ports: readonly { name?: string; containerPort: number; protocol?: string }[];
}

/** An endpoint of a connection: a pod of the cluster, or an address outside it. */
export type PolicyEndpoint = { pod: PolicyPod } | { ip: string };

/** Everything an answer depends on: the namespaces' labels and every NetworkPolicy. */
export interface PolicyCluster {
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
  policies: readonly INetworkPolicy[];
}

/** One side of the decision (the source's egress or the destination's ingress). */
export interface SideVerdict {
  /** Some policy of that type selects the pod: only what a rule allows gets through. */
  isolated: boolean;
  /** `namespace/name` of the policies of that type selecting the pod. */
  selectedBy: string[];
  /** Those of them with a rule allowing this connection. */
  allowedBy: string[];
  allowed: boolean;
}

/** Whether a connection gets through, and which policies decided each side. */
export interface ConnectionVerdict {
  allowed: boolean;
  egress: SideVerdict;
  ingress: SideVerdict;
}

/** A connection to check: from, to, destination port and protocol. */
export interface Connection {
  from: PolicyEndpoint;
  to: PolicyEndpoint;
  port: number;
  protocol?: "TCP" | "UDP" | "SCTP";
}

/** Whether `labels` satisfy a label selector; an empty selector ({}) selects everything. */
export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, expression.key);
    const values = expression.values ?? [];
    switch (expression.operator) {
      case "In":
        if (!present || !values.includes(labels[expression.key]!)) return false;
        break;
      case "NotIn":
        if (present && values.includes(labels[expression.key]!)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
      default:
        // An operator the API server would refuse selects nothing.
        return false;
    }
  }
  return true;
}

function cidrBlock(cidrs: readonly string[]): BlockList {
  const block = new BlockList();
  for (const cidr of cidrs) {
    const [address, prefix] = cidr.split("/");
    const type = isIPv6(address!) ? "ipv6" : "ipv4";
    block.addSubnet(address!, Number(prefix ?? (type === "ipv6" ? 128 : 32)), type);
  }
  return block;
}

function inCidrs(ip: string, cidrs: readonly string[]): boolean {
  return cidrBlock(cidrs).check(ip, isIPv6(ip) ? "ipv6" : "ipv4");
}

const ipOf = (endpoint: PolicyEndpoint) => ("pod" in endpoint ? endpoint.pod.ip : endpoint.ip);

/**
 * Whether `peer` (of a policy in `policyNamespace`) names `endpoint`:
 * namespaceSelector and podSelector in ONE peer must both match; an absent
 * namespaceSelector means the policy's own namespace; an ipBlock matches
 * its cidr minus its exceptions (and, here as in most plugins, pod addresses too).
 */
export function peerMatches(peer: INetworkPolicyPeer, endpoint: PolicyEndpoint, policyNamespace: string, cluster: PolicyCluster): boolean {
  if (peer.ipBlock) {
    const ip = ipOf(endpoint);
    const sameFamily = isIPv6(ip) === isIPv6(peer.ipBlock.cidr.split("/")[0]!);
    return (
      sameFamily &&
      inCidrs(ip, [peer.ipBlock.cidr]) &&
      !(peer.ipBlock.except ?? []).some((except) => isIPv6(ip) === isIPv6(except.split("/")[0]!) && inCidrs(ip, [except]))
    );
  }
  if (!("pod" in endpoint)) return false;
  const { pod } = endpoint;
  if (peer.namespaceSelector) {
    if (!selectorMatches(peer.namespaceSelector, cluster.namespaceLabels.get(pod.namespace) ?? {})) return false;
  } else if (pod.namespace !== policyNamespace) {
    return false;
  }
  return peer.podSelector ? selectorMatches(peer.podSelector, pod.labels) : true;
}

/** Whether a rule's port entry covers `port`/`protocol` on `destination` (named ports resolve on the destination pod). */
export function portMatches(entry: INetworkPolicyPort, port: number, protocol: string, destination: PolicyEndpoint): boolean {
  if ((entry.protocol ?? "TCP") !== protocol) return false;
  if (entry.port === undefined) return true;
  if (typeof entry.port === "number") return entry.endPort === undefined ? port === entry.port : port >= entry.port && port <= entry.endPort;
  if (!("pod" in destination)) return false;
  return destination.pod.ports.some((named) => named.name === entry.port && named.containerPort === port && (named.protocol ?? "TCP") === protocol);
}

/** The policy types of a policy: as written, or Ingress plus Egress when it has egress rules. */
export function policyTypesOf(policy: INetworkPolicy): string[] {
  if (policy.spec?.policyTypes && policy.spec.policyTypes.length > 0) return policy.spec.policyTypes;
  return (policy.spec?.egress ?? []).length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
}

const policyId = (policy: INetworkPolicy) => `${policy.metadata?.namespace}/${policy.metadata?.name}`;

function side(kind: "Ingress" | "Egress", selected: PolicyPod, peer: PolicyEndpoint, connection: Connection, cluster: PolicyCluster): SideVerdict {
  const protocol = connection.protocol ?? "TCP";
  const destination = kind === "Ingress" ? { pod: selected } : connection.to;
  const selecting = cluster.policies.filter(
    (policy) =>
      policy.metadata?.namespace === selected.namespace &&
      policyTypesOf(policy).includes(kind) &&
      selectorMatches(policy.spec?.podSelector ?? {}, selected.labels),
  );
  const allowing = selecting.filter((policy) => {
    const rules = kind === "Ingress" ? (policy.spec?.ingress ?? []) : (policy.spec?.egress ?? []);
    return rules.some((rule) => {
      const peers = kind === "Ingress" ? (rule as { from?: INetworkPolicyPeer[] }).from : (rule as { to?: INetworkPolicyPeer[] }).to;
      // An absent or empty peer list is every peer; an absent or empty port list is every port.
      const peerOk = !peers || peers.length === 0 || peers.some((candidate) => peerMatches(candidate, peer, policy.metadata!.namespace!, cluster));
      const portOk = !rule.ports || rule.ports.length === 0 || rule.ports.some((entry) => portMatches(entry, connection.port, protocol, destination));
      return peerOk && portOk;
    });
  });
  const isolated = selecting.length > 0;
  return { isolated, selectedBy: selecting.map(policyId), allowedBy: allowing.map(policyId), allowed: !isolated || allowing.length > 0 };
}

/**
 * Decides a connection the way a NetworkPolicy plugin does: it gets through
 * when the source's egress and the destination's ingress both allow it; a
 * side no policy of that type selects is open; rules of all selecting
 * policies are ORed.
 */
export function evaluateConnection(connection: Connection, cluster: PolicyCluster): ConnectionVerdict {
  const open: SideVerdict = { isolated: false, selectedBy: [], allowedBy: [], allowed: true };
  const egress = "pod" in connection.from ? side("Egress", connection.from.pod, connection.to, connection, cluster) : open;
  const ingress = "pod" in connection.to ? side("Ingress", connection.to.pod, connection.from, connection, cluster) : open;
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}
