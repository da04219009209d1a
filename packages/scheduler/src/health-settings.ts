import type { FieldViolation } from "@berth/kit";
import type { HealthCheck } from "@berth/proto/type/v1/process";
import { RoutingClass } from "@berth/proto/type/v1/process";

/** When a replica counts as healthy; every field resolved (no zero meaning "default"). */
export interface HealthSettings {
  /** HTTP path probed for web processes. */
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive successes before a replica is healthy. */
  healthyThreshold: number;
  /** Consecutive failures before a healthy replica is unhealthy. */
  unhealthyThreshold: number;
  /** How long a new replica may take to become healthy before it is restarted. */
  startTimeoutMs: number;
  /** How long a replica must have run before it counts as ready (the whole check for workers). */
  minReadyMs: number;
}

/** A type's explicit health settings; missing fields take the defaults. */
export type HealthOverrides = Partial<HealthSettings>;

/**
 * The platform's defaults, as quick as Kamal's: a check every second, a 5 s
 * timeout, 30 s to become healthy. Workers have no probe: they are ready once
 * they have run for `workerMinReadyMs`.
 */
export interface HealthDefaults {
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  startTimeoutMs: number;
  minReadyMs: number;
  workerMinReadyMs: number;
}

/** The defaults berth ships with. */
export const DEFAULT_HEALTH: HealthDefaults = {
  intervalMs: 1000,
  timeoutMs: 5000,
  healthyThreshold: 1,
  unhealthyThreshold: 3,
  startTimeoutMs: 30_000,
  minReadyMs: 0,
  workerMinReadyMs: 1000,
};

/** The effective health settings of a type of `routingClass`. */
export function resolveHealth(routingClass: RoutingClass, overrides: HealthOverrides, defaults: HealthDefaults): HealthSettings {
  const worker = routingClass === RoutingClass.WORKER || routingClass === RoutingClass.RELEASE;
  return {
    path: overrides.path ?? "/",
    intervalMs: overrides.intervalMs ?? defaults.intervalMs,
    timeoutMs: overrides.timeoutMs ?? defaults.timeoutMs,
    healthyThreshold: overrides.healthyThreshold ?? defaults.healthyThreshold,
    unhealthyThreshold: overrides.unhealthyThreshold ?? defaults.unhealthyThreshold,
    startTimeoutMs: overrides.startTimeoutMs ?? defaults.startTimeoutMs,
    minReadyMs: overrides.minReadyMs ?? (worker ? defaults.workerMinReadyMs : defaults.minReadyMs),
  };
}

const LIMITS: Record<Exclude<keyof HealthSettings, "path">, { field: string; min: number; max: number }> = {
  intervalMs: { field: "interval_ms", min: 100, max: 300_000 },
  timeoutMs: { field: "timeout_ms", min: 100, max: 300_000 },
  healthyThreshold: { field: "healthy_threshold", min: 1, max: 100 },
  unhealthyThreshold: { field: "unhealthy_threshold", min: 1, max: 100 },
  startTimeoutMs: { field: "start_timeout_ms", min: 1000, max: 3_600_000 },
  minReadyMs: { field: "min_ready_ms", min: 1, max: 3_600_000 },
};

/**
 * Turns a HealthCheck message into overrides (zero and empty mean "keep the
 * default") and lists what is out of range, each violation under `fieldPrefix`.
 */
export function healthOverridesFrom(check: HealthCheck, fieldPrefix: string): { overrides: HealthOverrides; violations: FieldViolation[] } {
  const overrides: HealthOverrides = {};
  const violations: FieldViolation[] = [];
  if (check.path !== "") {
    if (!/^\/[\x21-\x7e]*$/.test(check.path)) {
      violations.push({ field: `${fieldPrefix}.path`, description: "must start with / and contain no spaces or control characters" });
    } else {
      overrides.path = check.path;
    }
  }
  for (const [key, limit] of Object.entries(LIMITS) as [keyof typeof LIMITS, (typeof LIMITS)[keyof typeof LIMITS]][]) {
    const value = check[key];
    if (value === 0) continue;
    if (value < limit.min || value > limit.max) {
      violations.push({ field: `${fieldPrefix}.${limit.field}`, description: `must be between ${limit.min} and ${limit.max}, got ${value}` });
    } else {
      overrides[key] = value;
    }
  }
  return { overrides, violations };
}
