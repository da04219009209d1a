import { createHash } from "node:crypto";
import { internalHostname } from "../hostnames.js";

/**
 * The name of a process type's objects on Kubernetes, `<app>-<type>`: the
 * scheduler's Deployment, Service and HorizontalPodAutoscaler and the
 * router's Ingress of the same process share it, which is how an Ingress
 * finds its Service.
 */
export function processObjectName(app: string, processType: string): string {
  // The same name as the internal hostname: a tcp process's Service name is what other apps resolve.
  return internalHostname(app, processType);
}

/**
 * The namespace of a team's workloads and policies, `<base>-<team>`, a DNS
 * label: when that is longer than 63 characters it is cut and ends with a
 * hash of the team so that two long team names never share one.
 */
export function teamNamespace(base: string, team: string): string {
  const name = `${base}-${team}`;
  if (name.length <= 63) return name;
  const digest = createHash("sha256").update(team).digest("hex").slice(0, 10);
  return `${name.slice(0, 52).replace(/-+$/, "")}-${digest}`;
}

/**
 * The `app.kubernetes.io/component` of the TURN gateway pods of an rtc
 * process, `<type>-gateway`: how the netpol service lets exactly that
 * gateway, and no other, into the process.
 */
export function turnGatewayComponent(processType: string): string {
  return `${processType}-gateway`;
}

/**
 * Why a Kubernetes object cannot be called `name`, or undefined when it can:
 * an RFC 1035 label of at most 63 characters (what a Service name must be,
 * the strictest of the kinds berth names after a process).
 */
export function kubernetesNameProblem(name: string): string | undefined {
  if (name.length > 63) return `"${name}" is longer than 63 characters`;
  if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name))
    return `"${name}" must be lower-case letters, digits and '-', start with a letter and end with a letter or digit`;
  return undefined;
}
