import { hash } from "node:crypto";
import { LABEL, labelSelector, routingClassOf, standardLabels, teamNamespace, turnGatewayComponent } from "@berth/kit";
import type { PruneScope } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { IngressPeer } from "../config.js";
import type { AppEntry, PolicyModel } from "../policy-model.js";
import { memoizePerApp, teamApps, trustOf } from "../policy-model.js";

/** The field manager and `managed-by` label of every object netpol applies. */
export const NETPOL_MANAGER = "berth-netpol";
/** Holds a digest of the object as compiled, so a plan tells a changed object from an unchanged one without comparing server defaults. */
export const POLICY_DIGEST_ANNOTATION = "berth.dev/policy-digest";
/** The label every namespace carries with its own name (Kubernetes sets it since 1.22). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** Where policies go and who the platform's own peers are. */
export interface KubernetesPolicySettings {
  /** Teams' namespaces are `<namespaceBase>-<team>`. */
  namespaceBase: string;
  ingress: IngressPeer;
}

/** Deterministic policy names: one per team for the defaults, one per app and class, one per rtc process. */
export const policyName = {
  defaultDeny: "berth.default-deny",
  egress: "berth.egress",
  web: (app: string) => `${app}.web`,
  tcp: (app: string) => `${app}.tcp`,
  rtc: (app: string, processType: string) => `${app}.${processType}`,
};

/** Private and special-use ranges: reaching them directly would reach other teams' pods and the cluster's own services. */
export const PRIVATE_IPV4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"];
export const PRIVATE_IPV6 = ["fc00::/7", "fe80::/10", "::1/128"];

const typesOf = (app: AppEntry, routingClass: RoutingClass) =>
  app.processes.filter((process) => process.routingClass === routingClass).map((process) => process.processType);

/** The digest of an object from its name and the inputs it was compiled from. */
type Digester = (name: string, inputs: string) => string;

/**
 * A policy named `name`, made from `inputs` (everything that varies between
 * objects of its kind besides name and namespace). Its digest hashes those
 * inputs with a fingerprint of the templates, not the whole object: tens of
 * thousands of objects per compile would spend most of it serialising.
 */
function policy(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  spec: INetworkPolicy["spec"],
  inputs: string,
  digest: Digester,
): INetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace, labels, annotations: { [POLICY_DIGEST_ANNOTATION]: digest(name, `${namespace}\0${inputs}`) } },
    spec,
  };
}

/** The pods of `app` whose process type is one of `types`. */
const processPods = (app: string, types: string[]) => ({
  matchLabels: { [LABEL.name]: app },
  matchExpressions: [{ key: LABEL.component, operator: "In", values: types }],
});

/** The ingress data plane: its namespace AND its pods, in one peer (two peers would let in either). */
function ingressPeer(ingress: IngressPeer): INetworkPolicyPeer {
  return { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ingress.namespace } }, podSelector: { matchLabels: { ...ingress.podLabels } } };
}

/** The team-wide policies: deny everything, then let every pod out to DNS, the public internet and its own team. */
function teamPolicies(team: string, namespace: string, settings: KubernetesPolicySettings, digest: Digester): INetworkPolicy[] {
  const labels = (name: string) => standardLabels({ app: "berth", component: "network-policy", managedBy: NETPOL_MANAGER, team, instance: name });
  return [
    // Both types and no rule: every pod of the team is isolated both ways until another policy allows something.
    policy(policyName.defaultDeny, namespace, labels(policyName.defaultDeny), { podSelector: {}, policyTypes: ["Ingress", "Egress"] }, team, digest),
    policy(
      policyName.egress,
      namespace,
      labels(policyName.egress),
      {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
            ports: [
              { protocol: "UDP", port: 53 },
              { protocol: "TCP", port: 53 },
            ],
          },
          // The public internet; public platform hostnames re-enter through the ingress like any outside client.
          { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: PRIVATE_IPV4 } }, { ipBlock: { cidr: "::/0", except: PRIVATE_IPV6 } }] },
          { to: [ingressPeer(settings.ingress)] },
          // The team's own pods: whether they accept is for their ingress policies to say.
          { to: [{ podSelector: {} }] },
        ],
      },
      team,
      digest,
    ),
  ];
}

/** The policies of one app: web from the ingress, tcp from itself and its trust list, each rtc process from its own gateway and the ingress. */
function appPolicies(model: PolicyModel, app: AppEntry, settings: KubernetesPolicySettings, digest: Digester): INetworkPolicy[] {
  const namespace = teamNamespace(settings.namespaceBase, app.team);
  const labels = (name: string) => standardLabels({ app: app.name, component: "network-policy", managedBy: NETPOL_MANAGER, team: app.team, instance: name });
  const policies: INetworkPolicy[] = [];
  const web = typesOf(app, RoutingClass.WEB);
  if (web.length > 0) {
    const name = policyName.web(app.name);
    policies.push(
      policy(
        name,
        namespace,
        labels(name),
        {
          podSelector: processPods(app.name, web),
          policyTypes: ["Ingress"],
          ingress: [{ from: [ingressPeer(settings.ingress)], ports: [{ protocol: "TCP", port: "http" }] }],
        },
        `${app.team}\0${web.join()}`,
        digest,
      ),
    );
  }
  const tcp = typesOf(app, RoutingClass.TCP);
  if (tcp.length > 0) {
    const name = policyName.tcp(app.name);
    // One peer listing every trusted app: a trust change rewrites this object only, whatever the team's size.
    const sources = [app.name, ...trustOf(model, app.name).filter((trusted) => model.apps.get(trusted)?.team === app.team)];
    policies.push(
      policy(
        name,
        namespace,
        labels(name),
        {
          podSelector: processPods(app.name, tcp),
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [{ podSelector: { matchExpressions: [{ key: LABEL.name, operator: "In", values: sources }] } }],
              ports: [{ protocol: "TCP", port: "tcp" }],
            },
          ],
        },
        `${app.team}\0${tcp.join()}\0${sources.join()}`,
        digest,
      ),
    );
  }
  for (const processType of typesOf(app, RoutingClass.RTC)) {
    const name = policyName.rtc(app.name, processType);
    policies.push(
      policy(
        name,
        namespace,
        labels(name),
        {
          podSelector: { matchLabels: { [LABEL.name]: app.name, [LABEL.component]: processType } },
          policyTypes: ["Ingress"],
          // Every port: the gateway relays media to whatever ports the process's ICE candidates name. The
          // turn-allocator runs the gateways in the base namespace, labelled `<type>-gateway` (coturn-objects.ts);
          // a pod of the team's own namespace labelled so is not one. The gateways run on the host network,
          // which some network plugins treat as the node's traffic rather than the pod's.
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: settings.namespaceBase } },
                  podSelector: { matchLabels: { [LABEL.name]: app.name, [LABEL.component]: turnGatewayComponent(processType) } },
                },
              ],
            },
            // Each replica's own hostname (HTTPS, WebSocket) comes in through the ingress, to its `rtc` port alone.
            { from: [ingressPeer(settings.ingress)], ports: [{ protocol: "TCP", port: "rtc" }] },
          ],
        },
        app.team,
        digest,
      ),
    );
  }
  return policies;
}

/** What compiling with one settings object needs: its digester and its per-app memo. */
interface Compiler {
  digest: Digester;
  appPolicies: (model: PolicyModel, app: AppEntry) => INetworkPolicy[];
}

// Every template at work once, so that a change to any of them changes the fingerprint and so every digest.
const SAMPLE: PolicyModel = {
  apps: new Map([
    [
      "a",
      {
        name: "a",
        team: "t",
        createdAtMs: 0,
        processes: ["web", "x-tcp", "y-rtc", "worker"].map((processType) => ({ processType, routingClass: routingClassOf(processType), port: 0 })),
      },
    ],
    ["b", { name: "b", team: "t", createdAtMs: 0, processes: [{ processType: "z-tcp", routingClass: RoutingClass.TCP, port: 0 }] }],
  ]),
  trust: new Map([["a", ["b"]]]),
};

// One compiler per settings object: the platform has one, tests and benchmarks may make several.
const compilers = new WeakMap<KubernetesPolicySettings, Compiler>();

function compilerFor(settings: KubernetesPolicySettings): Compiler {
  let compiler = compilers.get(settings);
  if (!compiler) {
    const noDigest: Digester = () => "";
    const sample = [...teamPolicies("t", "n", settings, noDigest), ...[...SAMPLE.apps.values()].flatMap((app) => appPolicies(SAMPLE, app, settings, noDigest))];
    const fingerprint = hash("sha1", JSON.stringify(sample), "hex");
    const digest: Digester = (name, inputs) => hash("sha1", `${fingerprint}\0${name}\0${inputs}`, "hex");
    compiler = { digest, appPolicies: memoizePerApp((model, app) => appPolicies(model, app, settings, digest)) };
    compilers.set(settings, compiler);
  }
  return compiler;
}

/** Every NetworkPolicy of one team, in its namespace: the team-wide two, then each app's, by app name; none for a team without apps. */
export function compileTeamPolicies(model: PolicyModel, team: string, settings: KubernetesPolicySettings): INetworkPolicy[] {
  const apps = teamApps(model, team);
  if (apps.length === 0) return [];
  const compiler = compilerFor(settings);
  return [
    ...teamPolicies(team, teamNamespace(settings.namespaceBase, team), settings, compiler.digest),
    ...apps.flatMap((app) => compiler.appPolicies(model, app)),
  ];
}

/** What pruning may delete for a team: netpol's NetworkPolicies in its namespace, nothing else. */
export function teamPruneScope(team: string, settings: KubernetesPolicySettings): PruneScope {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    namespace: teamNamespace(settings.namespaceBase, team),
    labelSelector: labelSelector({ [LABEL.managedBy]: NETPOL_MANAGER, [LABEL.team]: team }),
  };
}
