import { ConfigError, envInt, envString, peerUrl, readCommonConfig, readEngine, readKubernetesTarget } from "@berth/kit";
import type { CommonConfig, EngineKind, Environment, KubernetesTarget } from "@berth/kit";

/** Where the cluster's ingress data plane runs, the only peer allowed into web processes. */
export interface IngressPeer {
  /** The namespace of the ingress controller's pods. */
  namespace: string;
  /** Labels every ingress controller pod carries. */
  podLabels: Record<string, string>;
}

/** Everything the netpol service needs to start. */
export interface NetpolConfig extends CommonConfig {
  schedulerUrl: string;
  /** local: the compiled rules are streamed to the local runtime; kubernetes: NetworkPolicies are applied. */
  engine: EngineKind;
  /** How often every team's NetworkPolicies are compared with the cluster's, repairing drift. */
  resyncMs: number;
  kubernetes: KubernetesTarget & {
    ingress: IngressPeer;
    /** $PORT inside containers, the number behind the named ports the policies use (the scheduler's setting). */
    containerPort: number;
  };
}

/** `a=b,c=d` into labels; throws naming the variable on a malformed pair. */
function parseLabels(name: string, raw: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of raw.split(",")) {
    const match = /^([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)$/.exec(pair.trim());
    if (!match) throw new ConfigError(`${name} must be comma-separated key=value labels, got "${raw}"`);
    labels[match[1]!] = match[2]!;
  }
  return labels;
}

/** Reads the netpol service's configuration; throws ConfigError naming the variable at fault. */
export function readNetpolConfig(env: Environment): NetpolConfig {
  const ingressPodsVariable = "BERTH_NETPOL_INGRESS_POD_LABELS";
  return {
    ...readCommonConfig(env, "netpol"),
    schedulerUrl: peerUrl(env, "scheduler"),
    engine: readEngine(env),
    resyncMs: envInt(env, "BERTH_NETPOL_RESYNC_MS", 300_000, { min: 1000, max: 86_400_000 }),
    kubernetes: {
      ...readKubernetesTarget(env),
      ingress: {
        namespace: envString(env, "BERTH_NETPOL_INGRESS_NAMESPACE", "ingress-nginx"),
        podLabels: parseLabels(ingressPodsVariable, envString(env, ingressPodsVariable, "app.kubernetes.io/name=ingress-nginx")),
      },
      containerPort: envInt(env, "BERTH_KUBERNETES_CONTAINER_PORT", 5000, { min: 1, max: 65535 }),
    },
  };
}
