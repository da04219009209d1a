import type { Canary, Rollout, TrafficFigures } from "@berth/proto/type/v1/release";
import { CanaryState, CanaryTrafficState } from "@berth/proto/type/v1/release";
import { api } from "./rpc.js";
import { ErrorNote, enumWords, timeOf, useAction } from "./ui.js";

const count = (value: bigint) => value.toLocaleString("en-US");

/** What one release served in the figures given, its web types together. */
function servedBy(figures: readonly TrafficFigures[], version: number) {
  const served = { requests: 0n, failed: 0n, appErrors: 0n };
  for (const entry of figures) {
    if (entry.releaseVersion !== version) continue;
    served.requests += entry.requests;
    served.failed += entry.failed;
    served.appErrors += entry.appErrors;
  }
  return served;
}

function servedText(figures: readonly TrafficFigures[], version: number, note: string): string {
  const served = servedBy(figures, version);
  return `${count(served.requests)} requests to v${version}${note}, ${count(served.failed)} failed, ${count(served.appErrors)} 5xx`;
}

// The routers report each period after it ends: a canary's figures are final a report later than its end.
const FIGURES_NOTE: Record<CanaryTrafficState, string> = {
  [CanaryTrafficState.UNSPECIFIED]: "",
  [CanaryTrafficState.COUNTING]: " so far",
  [CanaryTrafficState.COMPLETE]: "",
  [CanaryTrafficState.PARTIAL]: " (a router's last report missing)",
};

/** How a release's canary went, for the releases table: "promoted by hand (PROMOTED_BY_HAND): 1,204 requests to v3, 0 failed, 0 5xx". */
export function canaryOutcome(canary: Canary, version: number): string {
  if (canary.state === CanaryState.STARTING || canary.state === CanaryState.RUNNING)
    return `${enumWords(CanaryState, canary.state)} at ${canary.currentPercent} %`;
  const how = `${enumWords(CanaryState, canary.state)}${canary.byHand ? " by hand" : ""}${canary.reason ? ` (${canary.reason})` : ""}`;
  return `${how}: ${servedText(canary.traffic, version, FIGURES_NOTE[canary.trafficState])}`;
}

/** When the canary's share next grows, as local time. */
function nextStepAt(canary: Canary): string {
  const started = canary.stepStartedAt;
  const intervalMs = canary.policy?.intervalMs ?? 0;
  if (started === undefined) return "once its replicas are healthy";
  return timeOf({ seconds: started.seconds + BigInt(Math.floor((started.nanos / 1e6 + intervalMs) / 1000)), nanos: 0 });
}

/**
 * A canary under way, from its rollout as the page follows it: its share
 * and step, when the share grows next, what its release served so far (the
 * rollout's figures, which grow with each step), and Promote and Abort, each
 * confirmed first.
 */
export function CanaryPanel({ app, rollout }: { app: string; rollout: Rollout }) {
  const canary = rollout.canary!;
  const action = useAction();
  const policy = canary.policy;
  const version = rollout.releaseVersion;
  const move = async (question: string, call: () => Promise<unknown>) => {
    if (window.confirm(question)) await action.run(call);
  };
  return (
    <fieldset class="canary" data-testid="canary">
      <legend class="sr-only">Canary</legend>
      <p>
        Canary v{version}: <strong data-testid="canary-share">{canary.currentPercent} %</strong> of web requests
        {policy ? `, +${policy.stepPercent ?? 0} % every ${(policy.intervalMs ?? 0) / 1000} s while at most ${policy.maxFailureRate ?? 0} % fail` : ""}; next
        step {nextStepAt(canary)}.
      </p>
      <p data-testid="canary-figures">{servedText(rollout.traffic?.byRelease ?? [], version, " so far")}</p>
      <button type="button" disabled={action.busy} onClick={() => move(`Send every request to v${version} now?`, () => api.apps.promoteCanary({ app }))}>
        Promote
      </button>{" "}
      <button
        type="button"
        class="danger"
        disabled={action.busy}
        onClick={() => move(`Roll v${version} back now? Its replicas leave the endpoints, then stop.`, () => api.apps.abortCanary({ app }))}
      >
        Abort
      </button>
      <ErrorNote error={action.error} />
    </fieldset>
  );
}
