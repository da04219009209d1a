import { createHash } from "node:crypto";

/**
 * The longest name processObjectName makes: a StatefulSet's pods carry the
 * label `controller-revision-hash: <name>-<10 characters>`, and a label
 * value is at most 63 characters, so the strictest kind berth names after a
 * process allows 52.
 */
export const MAX_PROCESS_OBJECT_NAME = 52;

/**
 * The name of a process type's objects on Kubernetes,
 * `<app>-<type>-<hash of app and type>`: the scheduler's Deployment (or
 * StatefulSet), web Service, HorizontalPodAutoscaler and
 * PodDisruptionBudget, the router's Ingress and the TURN allocator's
 * gateway share it, which is how an Ingress finds its Service. `<app>-<type>`
 * alone is ambiguous (app `a` with `b-worker` and app `a-b` with `worker`),
 * so the hash of the pair, which never collides in practice, keeps every
 * app's objects apart; it also lets a long `<app>-<type>` be cut to fit
 * without two names becoming one. A `*-tcp` process's Service is the
 * exception: it must be called by its internal hostname (internalHostname).
 */
export function processObjectName(app: string, processType: string): string {
  const digest = createHash("sha256").update(`${app}/${processType}`).digest("hex").slice(0, 10);
  const prefix = `${app}-${processType}`.slice(0, MAX_PROCESS_OBJECT_NAME - digest.length - 1).replace(/-+$/, "");
  return `${prefix}-${digest}`;
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
