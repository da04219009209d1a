import { internalHostname } from "@berth/kit";
import type { Route, RtcAllocation } from "@berth/proto/type/v1/network";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { ProcessFormation } from "@berth/proto/type/v1/process";

const byHostname = (a: Route, b: Route) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0);

/**
 * The formation as users see it: the scheduler's per-type view joined with
 * the router's routes. Web types get their URLs (platform URL first, then
 * custom domains) and custom domains; tcp types their internal hostname;
 * rtc types their TURN gateway and replica hostnames from the TURN allocator.
 */
export function joinFormation(
  app: string,
  processes: readonly ProcessFormation[],
  routes: readonly Route[],
  allocations: readonly RtcAllocation[] = [],
): ProcessFormation[] {
  return processes.map((process) => {
    // A shallow copy: the scheduler's answer may be shared between callers and is never changed.
    const view: ProcessFormation = { ...process };
    if (process.routingClass === RoutingClass.WEB) {
      const own = routes.filter((route) => route.processType === process.processType);
      const platform = own.filter((route) => !route.customDomain).sort(byHostname);
      const custom = own.filter((route) => route.customDomain).sort(byHostname);
      // The router's URL says how it serves the hostname (HTTPS only with the hostname's own certificate): none is guessed.
      view.urls = [...platform, ...custom].map((route) => route.url).filter((url) => url !== "");
      view.customDomains = custom.map((route) => route.hostname);
    } else if (process.routingClass === RoutingClass.TCP && view.internalHostname === "") {
      view.internalHostname = internalHostname(app, process.processType);
    } else if (process.routingClass === RoutingClass.RTC) {
      view.rtc = allocations.find((allocation) => allocation.processType === process.processType)?.exposure ?? view.rtc;
    }
    return view;
  });
}
