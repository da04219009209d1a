import { routingClassOf } from "@berth/kit";
import type { KubernetesExplainerSettings } from "../../src/explain/kubernetes-explainer.js";
import { withAppChanges, emptyModel, withTrustList } from "../../src/model-changes.js";
import type { PolicyModel } from "../../src/policy-model.js";

/** The settings compiled policies use in tests. */
export const SETTINGS: KubernetesExplainerSettings = {
  namespaceBase: "berth-apps",
  ingress: { namespace: "ingress-nginx", podLabels: { "app.kubernetes.io/name": "ingress-nginx" } },
  containerPort: 5000,
};

/** A model from `{ app: [team, [process types]] }` and `{ app: [trusted apps] }`. */
export function modelOf(apps: Record<string, [string, string[]]>, trust: Record<string, readonly string[]> = {}): PolicyModel {
  let model = withAppChanges(emptyModel(), {
    apps: Object.entries(apps).map(([name, [team, processes]], index) => ({
      name,
      team,
      createdAtMs: 1000,
      processes: processes.map((processType, typeIndex) => ({ processType, routingClass: routingClassOf(processType), port: 6000 + index * 10 + typeIndex })),
    })),
    deleted: [],
    snapshot: true,
  });
  for (const [app, trusted] of Object.entries(trust)) model = withTrustList(model, app, trusted);
  return model;
}

/** Two teams: acme (grpc-app trusts api-app; billing-app trusts grpc-app) and globex. */
export const TWO_TEAMS = modelOf(
  {
    "api-app": ["acme", ["web", "worker"]],
    "grpc-app": ["acme", ["web", "grpc-tcp", "worker", "release", "sfu-rtc"]],
    "billing-app": ["acme", ["billing-tcp", "admin-web"]],
    "lonely-app": ["acme", ["worker"]],
    portal: ["globex", ["web", "admin-tcp"]],
    reports: ["globex", ["worker", "export-tcp"]],
  },
  { "grpc-app": ["api-app"], "billing-app": ["grpc-app"], portal: ["reports"] },
);
