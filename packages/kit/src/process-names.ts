import type { RoutingClass as RoutingClassType } from "@berth/proto/type/v1/process";
import { RoutingClass } from "@berth/proto/type/v1/process";

/** A process type, app or team name: a lowercase DNS label (RFC 1123), at most 63 characters. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `name` is not a valid DNS label, or undefined when it is. */
export function dnsLabelProblem(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (name.length > 63) return `must be at most 63 characters, got ${name.length}`;
  if (!DNS_LABEL.test(name)) {
    return "must be lowercase letters, digits and dashes, starting and ending with a letter or digit";
  }
  return undefined;
}

/**
 * Why `processType` cannot have a TURN gateway, or undefined when it can:
 * only valid `*-rtc` names get one.
 */
export function rtcProcessProblem(processType: string): string | undefined {
  const problem = dnsLabelProblem(processType);
  if (problem !== undefined) return problem;
  if (routingClassOf(processType) !== RoutingClass.RTC) {
    return `"${processType}" is not an rtc process: only *-rtc processes get TURN gateways`;
  }
  return undefined;
}

/**
 * The routing class a process name implies: the heart of berth's contract.
 * `web`/`*-web` public HTTP, `*-tcp` private TCP, `*-rtc` TURN/UDP,
 * `release` the release phase, anything else a worker.
 */
export function routingClassOf(processType: string): RoutingClassType {
  if (processType === "web" || processType.endsWith("-web")) return RoutingClass.WEB;
  if (processType.endsWith("-tcp")) return RoutingClass.TCP;
  if (processType.endsWith("-rtc")) return RoutingClass.RTC;
  if (processType === "release") return RoutingClass.RELEASE;
  return RoutingClass.WORKER;
}

/** A short lowercase name for a routing class, as shown to users ("web", "tcp", ...). */
export function routingClassName(routingClass: RoutingClassType): string {
  switch (routingClass) {
    case RoutingClass.WEB:
      return "web";
    case RoutingClass.TCP:
      return "tcp";
    case RoutingClass.RTC:
      return "rtc";
    case RoutingClass.RELEASE:
      return "release";
    case RoutingClass.WORKER:
      return "worker";
    default:
      return "unknown";
  }
}
