import { routingClassOf } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { CanaryRecord } from "./store/canary.js";
import type { TrafficFiguresRecord } from "./store/traffic.js";

/** Why the analysis rolls a canary back. */
export type CanaryAbortReason = "FAILURE_RATE_EXCEEDED" | "CANARY_UNHEALTHY";

/**
 * What a running canary does now: `hold` its share until the interval ends,
 * `count` (the interval ended: the routers' figures for it are needed),
 * `raise` its share, `promote` it (its share would reach 100 %), or `abort`.
 */
export type CanaryDecision =
  | { kind: "hold"; until: number }
  | { kind: "count"; intervalEnd: number }
  | { kind: "raise"; percent: number; summary: string }
  | { kind: "promote"; summary: string }
  | { kind: "abort"; reason: CanaryAbortReason; message: string };

/** What the analysis of one running canary looks at. */
export interface CanaryAnalysisInput {
  canary: CanaryRecord;
  /** The canary's release: only its requests count. */
  releaseVersion: number;
  now: number;
  /** Every web type has a ready canary replica. */
  healthy: boolean;
  /** What the routers counted over the interval that ended, once every router reported past its end. */
  intervalFigures?: readonly TrafficFiguresRecord[];
}

/** A canary release's requests in web types, and those that failed: the platform's failures plus the app's own 5xx. */
export function canaryFailures(figures: readonly TrafficFiguresRecord[], releaseVersion: number): { requests: number; failures: number; rate: number } {
  let requests = 0;
  let failures = 0;
  for (const entry of figures) {
    if (entry.releaseVersion !== releaseVersion || routingClassOf(entry.processType) !== RoutingClass.WEB) continue;
    requests += entry.requests;
    failures += entry.failed + entry.appErrors;
  }
  return { requests, failures, rate: requests === 0 ? 0 : (failures * 100) / requests };
}

const rateText = (rate: number) => `${Number(rate.toFixed(2))} %`;

/**
 * Decides one step of a running canary (Flagger's analysis): an unhealthy
 * canary aborts at once; otherwise at each interval's end its failure rate
 * over that interval is compared with the limit: over it, the canary
 * aborts; at or under it, its share grows by a step, and reaching 100 %
 * promotes it. An interval in which the canary got no request passes (the
 * share grows until requests reach it). Pure: the same input gives the same step.
 */
export function decideCanaryStep(input: CanaryAnalysisInput): CanaryDecision {
  const { canary, now } = input;
  const { policy } = canary;
  if (!input.healthy) return { kind: "abort", reason: "CANARY_UNHEALTHY", message: "a canary replica is no longer healthy" };
  const intervalEnd = canary.stepStartedAt + policy.intervalMs;
  if (now < intervalEnd) return { kind: "hold", until: intervalEnd };
  if (input.intervalFigures === undefined) return { kind: "count", intervalEnd };
  const { requests, failures, rate } = canaryFailures(input.intervalFigures, input.releaseVersion);
  const summary = `${requests} requests at ${canary.currentPercent} %, ${failures} failed (${rateText(rate)})`;
  if (rate > policy.maxFailureRate) {
    return { kind: "abort", reason: "FAILURE_RATE_EXCEEDED", message: `${summary}: over the limit of ${rateText(policy.maxFailureRate)}` };
  }
  const percent = Math.min(100, canary.currentPercent + policy.stepPercent);
  return percent >= 100 ? { kind: "promote", summary } : { kind: "raise", percent, summary };
}
