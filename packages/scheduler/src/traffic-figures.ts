import { trafficText } from "@berth/kit/contract";
import type { TrafficFiguresRecord } from "./store/traffic.js";

/** Sums figures over releases. */
export function trafficTotals(figures: readonly TrafficFiguresRecord[]): { requests: number; failed: number; appErrors: number } {
  let requests = 0;
  let failed = 0;
  let appErrors = 0;
  for (const entry of figures) {
    requests += entry.requests;
    failed += entry.failed;
    appErrors += entry.appErrors;
  }
  return { requests, failed, appErrors };
}

/** "48,211 requests during the rollout, 0 failed" for final figures. */
export function trafficSummary(figures: readonly TrafficFiguresRecord[]): string {
  return trafficText({ ...trafficTotals(figures), complete: true });
}
