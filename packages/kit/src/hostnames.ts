import { RoutingClass } from "@berth/proto/type/v1/process";
import { DNS_LABEL, routingClassOf } from "./process-names.js";

/**
 * The hostname other apps of the team reach a `*-tcp` process at,
 * `<app>-<process>`. On Kubernetes it is also the name of the process's
 * Service, which is what makes it resolve there.
 */
export function internalHostname(app: string, processType: string): string {
  return `${app}-${processType}`;
}

/**
 * The platform hostname of a web process: `web` is served at
 * `<app>.<domain>`, `<name>-web` at `<app>-<name>.<domain>`.
 * Undefined for a process type that is not web-class: only web processes are routed.
 */
export function routeHostname(app: string, processType: string, platformDomain: string): string | undefined {
  const label = routeHostLabel(app, processType);
  return label === undefined ? undefined : `${label}.${platformDomain}`;
}

/**
 * The first label of a web process's platform hostname (`<app>` or
 * `<app>-<name>`), undefined for a type that is not web-class. Two processes
 * of different apps with the same label would share one hostname (app `a-b`'s
 * `web` and app `a`'s `b-web`), and a label is at most 63 characters long.
 */
export function routeHostLabel(app: string, processType: string): string | undefined {
  if (routingClassOf(processType) !== RoutingClass.WEB) return undefined;
  if (processType === "web") return app;
  return `${app}-${processType.slice(0, -"-web".length)}`;
}

/** A replica's number as it appears in names and BERTH_RTC_REPLICA: 01, 02, ..., 100. */
export function replicaNumber(replica: number): string {
  return String(replica).padStart(2, "0");
}

/**
 * The hostname that reaches one replica of an rtc process directly,
 * `<token>-01.<domain>`: the TURN allocator hands it to the replica, the
 * router serves it.
 */
export function replicaHostname(routeToken: string, replica: number, platformDomain: string): string {
  return `${routeToken}-${replicaNumber(replica)}.${platformDomain}`;
}

/**
 * Lowercases a hostname and drops one trailing dot, so that equal names
 * compare equal (DNS names are case-insensitive).
 */
export function normalizeHostname(hostname: string): string {
  const lower = hostname.trim().toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/** Whether `hostname` starts with a `*.` wildcard label. */
export function isWildcardHostname(hostname: string): boolean {
  return hostname.startsWith("*.");
}

/**
 * Why `hostname` (normalized) is not a fully qualified DNS name, or undefined
 * when it is one: RFC 1123 labels, at least two of them besides a leading `*`
 * wildcard label, not an IP address. Whether a wildcard is allowed, and under
 * which domains, is the router's policy, not this rule's.
 */
export function hostnameProblem(hostname: string): string | undefined {
  if (hostname === "") return "must not be empty";
  if (hostname.length > 253) return `must be at most 253 characters, got ${hostname.length}`;
  const labels = hostname.split(".");
  const wildcard = labels[0] === "*";
  if (labels.slice(1).includes("*")) return "a wildcard may only be the first label";
  const named = wildcard ? labels.slice(1) : labels;
  if (named.length < 2) {
    return wildcard ? "a wildcard must be followed by at least two labels" : "must be a fully qualified name with at least two labels, such as app.example.com";
  }
  for (const label of named) {
    if (label === "") return "must not contain empty labels";
    if (label.length > 63) return `label "${label}" is longer than 63 characters`;
    if (!DNS_LABEL.test(label)) return `label "${label}" must be letters, digits and dashes, starting and ending with a letter or digit`;
  }
  if (/^[0-9]+$/.test(named.at(-1)!)) return "must be a DNS name, not an IP address";
  return undefined;
}

/**
 * Whether a certificate or route for `pattern` (exact or `*.` wildcard)
 * covers `hostname`. A wildcard covers exactly one extra label.
 */
export function hostnameMatches(pattern: string, hostname: string): boolean {
  if (!isWildcardHostname(pattern)) return pattern === hostname;
  const dot = hostname.indexOf(".");
  return dot > 0 && hostname.slice(dot + 1) === pattern.slice(2);
}
