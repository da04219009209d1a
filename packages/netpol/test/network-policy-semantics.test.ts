import test from "ava";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { evaluateConnection } from "../src/explain/network-policy-evaluator.js";
import type { PolicyCluster, PolicyPod } from "../src/explain/network-policy-evaluator.js";

// The evaluator the explain answers and the compiled-policy tests rely on,
// checked against the NetworkPolicy semantics most often got wrong.

const namespaceLabels = new Map<string, Record<string, string>>([
  ["team-a", { "kubernetes.io/metadata.name": "team-a", tier: "apps" }],
  ["team-b", { "kubernetes.io/metadata.name": "team-b", tier: "apps" }],
  ["ingress", { "kubernetes.io/metadata.name": "ingress", tier: "edge" }],
  ["kube-system", { "kubernetes.io/metadata.name": "kube-system" }],
]);

function pod(
  namespace: string,
  labels: Record<string, string>,
  ip: string,
  ports: PolicyPod["ports"] = [{ name: "tcp", containerPort: 5000, protocol: "TCP" }],
): PolicyPod {
  return { name: `${labels.app ?? "pod"}-${ip}`, namespace, labels, ip, ports };
}

const server = pod("team-a", { app: "server" }, "10.0.0.1");
const clientA = pod("team-a", { app: "client", role: "frontend" }, "10.0.0.2");
const otherA = pod("team-a", { app: "other" }, "10.0.0.3");
const clientB = pod("team-b", { app: "client", role: "frontend" }, "10.0.1.2");
const edge = pod("ingress", { app: "edge" }, "10.0.2.1");
const dns = pod("kube-system", { "k8s-app": "kube-dns" }, "10.0.3.10", [{ name: "dns", containerPort: 53, protocol: "UDP" }]);

function np(name: string, namespace: string, spec: INetworkPolicy["spec"]): INetworkPolicy {
  return { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

const reach = (policies: INetworkPolicy[], from: PolicyPod | string, to: PolicyPod | string, port = 5000, protocol: "TCP" | "UDP" = "TCP") => {
  const cluster: PolicyCluster = { namespaceLabels, policies };
  const endpoint = (side: PolicyPod | string) => (typeof side === "string" ? { ip: side } : { pod: side });
  return evaluateConnection({ from: endpoint(from), to: endpoint(to), port, protocol }, cluster).allowed;
};

const toServer = (from: INetworkPolicy["spec"] extends infer S ? (S extends { ingress?: infer I } ? I : never) : never) =>
  np("server", "team-a", { podSelector: { matchLabels: { app: "server" } }, policyTypes: ["Ingress"], ingress: from });

test("a pod no policy selects is open; a selecting policy with no rules denies everything", (t) => {
  t.true(reach([], clientB, server));
  t.false(reach([toServer([])], clientA, server));
  t.false(reach([np("deny", "team-a", { podSelector: {}, policyTypes: ["Ingress"] })], clientA, server));
  // A policy of another namespace never selects the pod.
  t.true(reach([np("deny", "team-b", { podSelector: {}, policyTypes: ["Ingress"] })], clientA, server));
});

test("namespaceSelector and podSelector in one peer are ANDed; in two peers they are ORed", (t) => {
  const anded = toServer([{ from: [{ namespaceSelector: { matchLabels: { tier: "edge" } }, podSelector: { matchLabels: { app: "edge" } } }] }]);
  t.true(reach([anded], edge, server));
  t.false(reach([anded], clientB, server));
  const ored = toServer([{ from: [{ namespaceSelector: { matchLabels: { tier: "edge" } } }, { podSelector: { matchLabels: { app: "client" } } }] }]);
  t.true(reach([ored], edge, server));
  t.true(reach([ored], clientA, server));
  // The podSelector peer alone is the policy's own namespace: team-b's client is not in it.
  t.false(reach([ored], clientB, server));
  // matchLabels and matchExpressions of one selector are ANDed too.
  const both = toServer([
    { from: [{ podSelector: { matchLabels: { app: "client" }, matchExpressions: [{ key: "role", operator: "NotIn", values: ["frontend"] }] } }] },
  ]);
  t.false(reach([both], clientA, server));
});

test("empty and absent selectors and peer lists", (t) => {
  // from absent, or empty: every source, from any namespace and outside the cluster.
  t.true(reach([toServer([{}])], clientB, server));
  t.true(reach([toServer([{ from: [] }])], "203.0.113.9", server));
  // podSelector {} alone: every pod of the policy's namespace only.
  const sameNamespace = toServer([{ from: [{ podSelector: {} }] }]);
  t.true(reach([sameNamespace], otherA, server));
  t.false(reach([sameNamespace], clientB, server));
  // namespaceSelector {}: every pod of every namespace, but no outside address.
  const anyNamespace = toServer([{ from: [{ namespaceSelector: {} }] }]);
  t.true(reach([anyNamespace], clientB, server));
  t.false(reach([anyNamespace], "203.0.113.9", server));
  // An empty In list selects nothing.
  t.false(reach([toServer([{ from: [{ podSelector: { matchExpressions: [{ key: "app", operator: "In", values: [] }] } }] }])], clientA, server));
  // Exists / DoesNotExist.
  t.true(reach([toServer([{ from: [{ podSelector: { matchExpressions: [{ key: "role", operator: "Exists" }] } }] }])], clientA, server));
  t.false(reach([toServer([{ from: [{ podSelector: { matchExpressions: [{ key: "role", operator: "DoesNotExist" }] } }] }])], clientA, server));
});

test("policyTypes: unset means Ingress, plus Egress when egress rules exist; Egress alone leaves ingress open", (t) => {
  const egressOnly = np("egress-only", "team-a", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: {} }] }] });
  t.true(reach([egressOnly], clientB, server));
  t.true(reach([egressOnly], clientA, server));
  t.false(reach([egressOnly], clientA, clientB));
  // Unset types with egress rules: both isolated, and no ingress rule lets anything in.
  const implicit = np("implicit", "team-a", { podSelector: {}, egress: [{ to: [{ podSelector: {} }] }] });
  t.false(reach([implicit], clientB, server));
  // Unset types without egress rules: Ingress only, egress stays open.
  const ingressOnly = np("ingress-only", "team-a", { podSelector: {}, ingress: [] });
  t.true(reach([ingressOnly], clientA, clientB));
});

test("DNS egress: UDP and TCP 53 to the cluster DNS pods only", (t) => {
  const policies = [
    np("deny", "team-a", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }),
    np("dns", "team-a", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [
        {
          to: [
            { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } },
          ],
          ports: [
            { protocol: "UDP", port: 53 },
            { protocol: "TCP", port: 53 },
          ],
        },
      ],
    }),
  ];
  t.true(reach(policies, clientA, dns, 53, "UDP"));
  t.true(reach(policies, clientA, dns, 53, "TCP"));
  t.false(reach(policies, clientA, dns, 80, "TCP"));
  t.false(reach(policies, clientA, clientB, 53, "UDP"));
  t.false(reach(policies, clientA, "8.8.8.8", 53, "UDP"));
});

test("ipBlock with exceptions: the public internet yes, private ranges (other teams' pods) no", (t) => {
  const policies = [
    np("public", "team-a", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [
        {
          to: [
            { ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] } },
            { ipBlock: { cidr: "::/0", except: ["fc00::/7"] } },
          ],
        },
      ],
    }),
  ];
  t.true(reach(policies, clientA, "8.8.8.8", 443));
  t.true(reach(policies, clientA, "2001:4860:4860::8888", 443));
  t.false(reach(policies, clientA, "10.20.30.40", 443));
  t.false(reach(policies, clientA, "172.31.0.1", 443));
  t.true(reach(policies, clientA, "172.32.0.1", 443));
  t.false(reach(policies, clientA, "fd12::1", 443));
  t.false(reach(policies, clientA, clientB, 5000));
});

test("named ports resolve on the destination pod; numeric ports, ranges and protocols must match", (t) => {
  const named = toServer([{ from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: "tcp" }] }]);
  t.true(reach([named], clientA, server, 5000));
  t.false(reach([named], clientA, server, 5001));
  t.false(reach([named], clientA, server, 5000, "UDP"));
  const unnamedServer = pod("team-a", { app: "server" }, "10.0.0.9", [{ containerPort: 5000 }]);
  t.false(reach([named], clientA, unnamedServer, 5000));
  const numeric = toServer([{ from: [{ podSelector: {} }], ports: [{ port: 5000 }] }]);
  t.true(reach([numeric], clientA, unnamedServer, 5000));
  t.false(reach([numeric], clientA, unnamedServer, 5000, "UDP"));
  const range = toServer([{ from: [{ podSelector: {} }], ports: [{ protocol: "TCP", port: 4000, endPort: 4999 }] }]);
  t.true(reach([range], clientA, server, 4500));
  t.false(reach([range], clientA, server, 5000));
  // Rules of several selecting policies are ORed.
  t.true(reach([named, range], clientA, server, 4500));
});
