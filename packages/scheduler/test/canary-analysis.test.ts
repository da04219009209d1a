import test from "ava";
import { canaryFailures, decideCanaryStep } from "../src/canary-analysis.js";
import type { CanaryDecision } from "../src/canary-analysis.js";
import type { CanaryRecord } from "../src/store/canary.js";
import type { TrafficFiguresRecord } from "../src/store/traffic.js";

const canary = (overrides: Partial<CanaryRecord> = {}): CanaryRecord => ({
  policy: { percent: 10, stepPercent: 20, intervalMs: 1000, maxFailureRate: 1 },
  state: "running",
  currentPercent: 10,
  stepStartedAt: 10_000,
  runningSince: 10_000,
  byHand: false,
  reason: "",
  message: "",
  endedAt: 0,
  traffic: [],
  trafficState: "counting",
  ...overrides,
});

const figures = (processType: string, releaseVersion: number, requests: number, failed: number, appErrors: number): TrafficFiguresRecord => ({
  processType,
  releaseVersion,
  requests,
  failed,
  appErrors,
});

test("only the canary release's web requests count, failures and the app's own 5xx alike", (t) => {
  const counted = canaryFailures(
    [figures("web", 2, 100, 1, 2), figures("admin-web", 2, 100, 0, 1), figures("web", 1, 900, 50, 50), figures("worker", 2, 10, 10, 0)],
    2,
  );
  t.deepEqual(counted, { requests: 200, failures: 4, rate: 2 });
  t.deepEqual(canaryFailures([], 2), { requests: 0, failures: 0, rate: 0 });
});

test("the share is held until the interval ends, then the interval's figures are asked for", (t) => {
  t.deepEqual(decideCanaryStep({ canary: canary(), releaseVersion: 2, now: 10_500, healthy: true }), { kind: "hold", until: 11_000 });
  t.deepEqual(decideCanaryStep({ canary: canary(), releaseVersion: 2, now: 11_000, healthy: true }), { kind: "count", intervalEnd: 11_000 });
});

const steps: [string, Partial<CanaryRecord>, TrafficFiguresRecord[], CanaryDecision["kind"], number | undefined][] = [
  ["a rate at the limit raises the share by a step", {}, [figures("web", 2, 100, 1, 0)], "raise", 30],
  ["an interval with no canary request raises the share", {}, [figures("web", 1, 100, 5, 0)], "raise", 30],
  ["a rate over the limit aborts", {}, [figures("web", 2, 100, 0, 2)], "abort", undefined],
  ["a step that reaches 100 % promotes", { currentPercent: 80 }, [figures("web", 2, 100, 0, 0)], "promote", undefined],
  ["a step past 100 % promotes", { currentPercent: 90 }, [figures("web", 2, 100, 0, 0)], "promote", undefined],
  [
    "a zero limit aborts on a single failure",
    { policy: { percent: 10, stepPercent: 20, intervalMs: 1000, maxFailureRate: 0 } },
    [figures("web", 2, 1000, 1, 0)],
    "abort",
    undefined,
  ],
];
for (const [name, overrides, interval, kind, percent] of steps) {
  test(name, (t) => {
    const decision = decideCanaryStep({ canary: canary(overrides), releaseVersion: 2, now: 11_000, healthy: true, intervalFigures: interval });
    t.is(decision.kind, kind);
    if (decision.kind === "raise") t.is(decision.percent, percent ?? -1);
    if (decision.kind === "abort") t.is(decision.reason, "FAILURE_RATE_EXCEEDED");
  });
}

test("an unhealthy canary aborts at once, whatever its figures", (t) => {
  const decision = decideCanaryStep({ canary: canary(), releaseVersion: 2, now: 10_100, healthy: false, intervalFigures: [figures("web", 2, 100, 0, 0)] });
  t.like(decision, { kind: "abort", reason: "CANARY_UNHEALTHY" });
});
