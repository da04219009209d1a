import { LABEL, processObjectName, standardLabels, teamNamespace } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { compileTeamPolicies, NAMESPACE_NAME_LABEL } from "../compile/kubernetes-policies.js";
import type { KubernetesPolicySettings } from "../compile/kubernetes-policies.js";
import type { AppEntry, PolicyModel } from "../policy-model.js";
import { evaluateConnection } from "./network-policy-evaluator.js";
import type { PolicyPod, SideVerdict } from "./network-policy-evaluator.js";
import type { Explainer } from "./reachability.js";
import { classOf, contractReason, missingGrant } from "./reachability.js";

/** The names the scheduler gives the container ports of each class. */
const PORT_NAMES: Partial<Record<RoutingClass, string>> = { [RoutingClass.WEB]: "http", [RoutingClass.TCP]: "tcp", [RoutingClass.RTC]: "rtc" };

/** The settings of the kubernetes explainer: where policies go, and $PORT inside containers. */
export interface KubernetesExplainerSettings extends KubernetesPolicySettings {
  containerPort: number;
}

/** A pod of `app`'s process as the scheduler labels it (a pod of the app in general when `processType` is empty). */
function podOf(app: AppEntry, processType: string, ip: string, settings: KubernetesExplainerSettings): PolicyPod {
  const component = processType || app.processes[0]?.processType || "app";
  const portName = PORT_NAMES[classOf(app, component)];
  return {
    name: `${processObjectName(app.name, component)}-0`,
    namespace: teamNamespace(settings.namespaceBase, app.team),
    labels: {
      ...standardLabels({ app: app.name, component, team: app.team, managedBy: "berth-scheduler", instance: processObjectName(app.name, component) }),
      [LABEL.version]: "v1",
    },
    ip,
    ports: portName ? [{ name: portName, containerPort: settings.containerPort, protocol: "TCP" }] : [],
  };
}

const nameOf = (id: string) => id.slice(id.indexOf("/") + 1);

function denial(side: string, verdict: SideVerdict, subject: string): string {
  return `${side} ${subject} is denied: selected by ${verdict.selectedBy.map(nameOf).join(", ")}, and none of them has a rule that allows it`;
}

/**
 * Explains from the NetworkPolicies compiled for the teams involved,
 * evaluated the way a cluster's network plugin evaluates them, on pods
 * labelled as the scheduler labels them.
 */
export function createKubernetesExplainer(settings: KubernetesExplainerSettings): Explainer {
  // Compiled once per model and team: a matrix asks about every pair of the same model.
  const compiled = new WeakMap<PolicyModel, Map<string, INetworkPolicy[]>>();
  const policiesOf = (model: PolicyModel, team: string) => {
    let teams = compiled.get(model);
    if (!teams) compiled.set(model, (teams = new Map()));
    let policies = teams.get(team);
    if (!policies) teams.set(team, (policies = compileTeamPolicies(model, team, settings)));
    return policies;
  };
  return {
    explain(model, query) {
      const from = podOf(query.from, query.fromProcessType, "10.64.0.10", settings);
      const to = podOf(query.to, query.toProcessType, "10.64.0.20", settings);
      const teams = [...new Set([query.from.team, query.to.team])];
      const namespaceLabels = new Map<string, Record<string, string>>(
        [...teams.map((team) => teamNamespace(settings.namespaceBase, team)), settings.ingress.namespace, "kube-system"].map((namespace) => [
          namespace,
          { [NAMESPACE_NAME_LABEL]: namespace },
        ]),
      );
      const port = query.port || settings.containerPort;
      const verdict = evaluateConnection(
        { from: { pod: from }, to: { pod: to }, port },
        { namespaceLabels, policies: teams.flatMap((team) => policiesOf(model, team)) },
      );
      const source = `from ${query.from.name}${query.fromProcessType ? `/${query.fromProcessType}` : ""} (namespace ${from.namespace})`;
      const target = `to ${query.to.name}/${query.toProcessType} port ${port} (namespace ${to.namespace})`;
      if (verdict.allowed) {
        return {
          allowed: true,
          reasons: [
            `egress ${source} allowed by ${verdict.egress.allowedBy.map(nameOf).join(", ")}`,
            `ingress ${target} allowed by ${verdict.ingress.allowedBy.map(nameOf).join(", ")}`,
          ],
          policies: [...verdict.egress.allowedBy, ...verdict.ingress.allowedBy].map(nameOf),
        };
      }
      const reasons: string[] = [];
      const policies: string[] = [];
      if (!verdict.egress.allowed) {
        reasons.push(denial("egress", verdict.egress, source));
        policies.push(...verdict.egress.selectedBy.map(nameOf));
      }
      if (!verdict.ingress.allowed) {
        reasons.push(denial("ingress", verdict.ingress, target));
        policies.push(...verdict.ingress.selectedBy.map(nameOf));
      }
      const missing = contractReason(query) ?? (verdict.egress.allowed ? missingGrant(model, query) : undefined);
      if (missing) reasons.push(missing);
      return { allowed: false, reasons, policies: [...new Set(policies)] };
    },
  };
}
