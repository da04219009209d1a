import { RoutingClass } from "@berth/proto/type/v1/process";
import { routingClassOf } from "@berth/kit";

/**
 * The platform hostname of a web process: `web` is served at
 * `<app>.<domain>`, `<name>-web` at `<app>-<name>.<domain>`.
 * Undefined for a process type that is not web-class: only web processes are routed.
 */
export function routeHostname(app: string, processType: string, platformDomain: string): string | undefined {
  if (routingClassOf(processType) !== RoutingClass.WEB) return undefined;
  if (processType === "web") return `${app}.${platformDomain}`;
  return `${app}-${processType.slice(0, -"-web".length)}.${platformDomain}`;
}

/** What the platform allows as a custom domain. */
export interface DomainPolicy {
  /** Hostnames under it belong to the platform's own routes. */
  platformDomain: string;
  /** Whether `*.example.com` may be attached. */
  allowWildcards: boolean;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Lowercases a hostname and drops one trailing dot, so that equal names
 * compare equal (DNS names are case-insensitive).
 */
export function normalizeHostname(hostname: string): string {
  const lower = hostname.trim().toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/**
 * Why `hostname` (already normalized) cannot be attached as a custom domain,
 * or undefined when it can: an RFC 1123 name of at least two labels, not an
 * IP address, not under the platform domain, and a wildcard only when allowed.
 */
export function customDomainProblem(hostname: string, policy: DomainPolicy): string | undefined {
  if (hostname === "") return "must not be empty";
  if (hostname.length > 253) return `must be at most 253 characters, got ${hostname.length}`;
  const labels = hostname.split(".");
  if (labels.length < 2) return "must be a fully qualified name with at least two labels, such as app.example.com";
  const wildcard = labels[0] === "*";
  if (wildcard && !policy.allowWildcards) return "wildcard domains are not allowed on this platform";
  if (labels.slice(1).includes("*")) return "a wildcard may only be the first label";
  if (wildcard && labels.length < 3) return "a wildcard must be followed by at least two labels";
  for (const label of wildcard ? labels.slice(1) : labels) {
    if (label === "") return "must not contain empty labels";
    if (label.length > 63) return `label "${label}" is longer than 63 characters`;
    if (!LABEL.test(label)) {
      return `label "${label}" must be letters, digits and dashes, starting and ending with a letter or digit`;
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return "must be a DNS name, not an IP address";
  const platform = policy.platformDomain;
  if (hostname === platform || hostname.endsWith(`.${platform}`)) {
    return `names under ${platform} belong to the platform's own routes`;
  }
  return undefined;
}

/**
 * Whether a certificate or route for `pattern` (exact or `*.` wildcard)
 * covers `hostname`. A wildcard covers exactly one extra label.
 */
export function hostnameMatches(pattern: string, hostname: string): boolean {
  if (!pattern.startsWith("*.")) return pattern === hostname;
  const dot = hostname.indexOf(".");
  return dot > 0 && hostname.slice(dot + 1) === pattern.slice(2);
}
