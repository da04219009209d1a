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

/** "48,211 requests during the rollout, 0 failed". */
export function trafficSummary(figures: readonly TrafficFiguresRecord[]): string {
  const totals = trafficTotals(figures);
  const appErrors = totals.appErrors > 0 ? ` (and ${totals.appErrors.toLocaleString("en-US")} 5xx from the app)` : "";
  return `${totals.requests.toLocaleString("en-US")} requests during the rollout, ${totals.failed.toLocaleString("en-US")} failed${appErrors}`;
}
