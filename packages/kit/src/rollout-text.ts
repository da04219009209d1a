import { CanaryState, CanaryTrafficState, RolloutEventKind } from "@berth/proto/type/v1/release";
import type { Canary, RolloutEvent } from "@berth/proto/type/v1/release";

/** An enum value's name without its prefix, lower-case with spaces: RELEASE_STATUS_ROLLED_BACK -> "rolled back". */
export function enumText(names: Record<number, string>, value: number): string {
  return (names[value] ?? "unspecified").toLowerCase().replace(/_/g, " ");
}

/** One line of rollout progress, as `deploy` and `git push` print it live (a build's output lines are in `logTail`). */
export function rolloutEventText(event: RolloutEvent): string {
  const who = event.replica || event.processType;
  const what: Record<number, string> = {
    [RolloutEventKind.ROLLOUT_STARTED]: `rollout of v${event.releaseVersion} started`,
    [RolloutEventKind.BUILD_STARTED]: "build started",
    [RolloutEventKind.BUILD_OUTPUT]: "build output",
    [RolloutEventKind.BUILD_SUCCEEDED]: "build succeeded",
    [RolloutEventKind.BUILD_FAILED]: "build failed",
    [RolloutEventKind.RELEASE_PHASE_STARTED]: "release phase started",
    [RolloutEventKind.RELEASE_PHASE_SUCCEEDED]: "release phase succeeded",
    [RolloutEventKind.RELEASE_PHASE_FAILED]: "release phase failed",
    [RolloutEventKind.REPLICA_STARTED]: `${who} started`,
    [RolloutEventKind.REPLICA_HEALTHY]: `${who} healthy`,
    [RolloutEventKind.REPLICA_UNHEALTHY]: `${who} unhealthy`,
    [RolloutEventKind.REPLICA_DRAINING]: `${who} draining`,
    [RolloutEventKind.REPLICA_STOPPED]: `${who} stopped`,
    [RolloutEventKind.AUTOSCALED]: `${who} autoscaled`,
    [RolloutEventKind.ROLLOUT_SUCCEEDED]: `v${event.releaseVersion} is live`,
    [RolloutEventKind.ROLLOUT_FAILED]: "rollout failed",
    [RolloutEventKind.ROLLOUT_ROLLED_BACK]: "rollout rolled back",
    [RolloutEventKind.TRAFFIC_COUNTED]: "traffic counted",
    [RolloutEventKind.CANARY_STEP]: "canary",
    [RolloutEventKind.CANARY_PROMOTED]: "canary promoted",
    [RolloutEventKind.CANARY_ABORTED]: "canary aborted",
  };
  const parts = [what[event.kind] ?? enumText(RolloutEventKind, event.kind)];
  if (event.reason) parts.push(`(${event.reason})`);
  if (event.message) parts.push(`- ${event.message}`);
  return parts.join(" ");
}

/**
 * A rollout's figures in one phrase: "48,211 requests during the rollout, 0
 * failed", with the app's own 5xx when there were any and "so far" while
 * the routers' reports may still add to them.
 */
export function trafficText(traffic: { requests: number | bigint; failed: number | bigint; appErrors: number | bigint; complete: boolean }): string {
  const count = (value: number | bigint) => value.toLocaleString("en-US");
  const appErrors = Number(traffic.appErrors) > 0 ? ` (and ${count(traffic.appErrors)} 5xx from the app)` : "";
  return `${count(traffic.requests)} requests during the rollout${traffic.complete ? "" : " so far"}, ${count(traffic.failed)} failed${appErrors}`;
}

// How sure a finished canary's figures are: the routers' report covering its end comes after it.
const CANARY_FIGURES_NOTE: Record<CanaryTrafficState, string> = {
  [CanaryTrafficState.UNSPECIFIED]: "",
  [CanaryTrafficState.COUNTING]: " so far",
  [CanaryTrafficState.COMPLETE]: "",
  [CanaryTrafficState.PARTIAL]: " (a router's last report missing)",
};

/**
 * A canary in one phrase: "running at 40 % (+30 % every 1 s while at most
 * 1 % fail)" while it runs; once over, its outcome and the requests its
 * release got: "promoted (PROMOTED): 1,204 requests to v3, 0 failed, 0 5xx".
 */
export function canaryText(canary: Canary, releaseVersion: number): string {
  const policy = canary.policy;
  const rule = policy ? `+${policy.stepPercent ?? 0} % every ${(policy.intervalMs ?? 0) / 1000} s while at most ${policy.maxFailureRate ?? 0} % fail` : "";
  if (canary.state === CanaryState.STARTING) return `starting v${releaseVersion}'s replicas (then ${policy?.percent ?? 0} %, ${rule})`;
  if (canary.state === CanaryState.RUNNING) return `running at ${canary.currentPercent} % (${rule})`;
  let requests = 0n;
  let failed = 0n;
  let appErrors = 0n;
  for (const figures of canary.traffic) {
    if (figures.releaseVersion !== releaseVersion) continue;
    requests += figures.requests;
    failed += figures.failed;
    appErrors += figures.appErrors;
  }
  const count = (value: bigint) => value.toLocaleString("en-US");
  const how = `${enumText(CanaryState, canary.state)}${canary.byHand ? " by hand" : ""}${canary.reason ? ` (${canary.reason})` : ""}`;
  return `${how}: ${count(requests)} requests to v${releaseVersion}${CANARY_FIGURES_NOTE[canary.trafficState]}, ${count(failed)} failed, ${count(appErrors)} 5xx`;
}
