import type { FieldChecks } from "./field-checks.js";

/** A canary's step when none is given (percent). */
export const DEFAULT_CANARY_STEP_PERCENT = 10;
/** A canary's interval when none is given. */
export const DEFAULT_CANARY_INTERVAL_MS = 30_000;
/** A canary's failure-rate limit when none is given (percent). */
export const DEFAULT_CANARY_MAX_FAILURE_RATE = 1;
/** The shortest interval: the routers report their counts every second, and an interval must hold at least one report. */
export const MIN_CANARY_INTERVAL_MS = 1000;
/** The longest interval (a day). */
export const MAX_CANARY_INTERVAL_MS = 24 * 60 * 60 * 1000;

/** A canary policy as asked for: unset fields take the defaults. */
export interface CanaryPolicyInput {
  percent: number;
  stepPercent?: number;
  intervalMs?: number;
  maxFailureRate?: number;
}

/** A canary policy with every field set. */
export interface CanaryPolicyValues {
  percent: number;
  stepPercent: number;
  intervalMs: number;
  maxFailureRate: number;
}

/** Adds a problem naming `<prefix>.<field>` for each field of `policy` out of range. */
export function checkCanaryPolicy(checks: FieldChecks, prefix: string, policy: CanaryPolicyInput): void {
  if (!Number.isInteger(policy.percent) || policy.percent < 1 || policy.percent > 100) checks.add(`${prefix}.percent`, "must be 1 to 100 (percent)");
  if (policy.stepPercent !== undefined && (!Number.isInteger(policy.stepPercent) || policy.stepPercent < 1 || policy.stepPercent > 100)) {
    checks.add(`${prefix}.step_percent`, "must be 1 to 100 (percent)");
  }
  if (policy.intervalMs !== undefined && (policy.intervalMs < MIN_CANARY_INTERVAL_MS || policy.intervalMs > MAX_CANARY_INTERVAL_MS)) {
    checks.add(`${prefix}.interval_ms`, `must be ${MIN_CANARY_INTERVAL_MS} to ${MAX_CANARY_INTERVAL_MS} ms`);
  }
  const rate = policy.maxFailureRate;
  if (rate !== undefined && !(Number.isFinite(rate) && rate >= 0 && rate <= 100)) checks.add(`${prefix}.max_failure_rate`, "must be 0 to 100 (percent)");
}

/** `policy` with the defaults filled in. */
export function canaryPolicyValues(policy: CanaryPolicyInput): CanaryPolicyValues {
  return {
    percent: policy.percent,
    stepPercent: policy.stepPercent ?? DEFAULT_CANARY_STEP_PERCENT,
    intervalMs: policy.intervalMs ?? DEFAULT_CANARY_INTERVAL_MS,
    maxFailureRate: policy.maxFailureRate ?? DEFAULT_CANARY_MAX_FAILURE_RATE,
  };
}
