import { useEffect, useState } from "preact/hooks";
import type { Rollout, RolloutEvent } from "@berth/proto/type/v1/release";
import { CanaryState, RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { CanaryPanel } from "./canary-section.js";
import { api, isCancel, noteFailure } from "./rpc.js";
import { Section, enumWords, timeOf } from "./ui.js";

/** A rollout's steps as WatchRollout streams them, from its first step to its end. */
export function RolloutSection({ app, rolloutId }: { app: string; rolloutId: string }) {
  const [events, setEvents] = useState<RolloutEvent[]>([]);
  const [rollout, setRollout] = useState<Rollout | undefined>();
  const [failure, setFailure] = useState("");
  useEffect(() => {
    const abort = new AbortController();
    setEvents([]);
    setRollout(undefined);
    setFailure("");
    (async () => {
      try {
        for await (const step of api.apps.watchRollout({ app, rolloutId, fromSequence: 0n }, { signal: abort.signal })) {
          if (step.event) {
            const event = step.event;
            setEvents((before) => [...before, event]);
          }
          if (step.rollout) setRollout(step.rollout);
        }
      } catch (error) {
        if (!abort.signal.aborted && !isCancel(error)) setFailure(noteFailure(error).rawMessage);
      }
    })();
    return () => abort.abort();
  }, [app, rolloutId]);
  const state = rollout ? enumWords(RolloutState, rollout.state) : "starting";
  return (
    <Section title={`Rollout${rollout ? ` of v${rollout.releaseVersion}` : ""}`} id="rollout">
      <p>
        <span class={`state ${state.replaceAll(" ", "-")}`} data-testid="rollout-state">
          {state}
        </span>
        {rollout?.reason ? ` — ${rollout.reason}` : ""}
        {rollout?.message ? `: ${rollout.message}` : ""}
      </p>
      {rollout?.canary && (rollout.canary.state === CanaryState.STARTING || rollout.canary.state === CanaryState.RUNNING) && (
        <CanaryPanel app={app} rollout={rollout} />
      )}
      {failure && (
        <div class="error" role="alert">
          {failure}
        </div>
      )}
      <ol class="steps" aria-live="polite" data-testid="rollout-steps">
        {events.map((event) => (
          <li key={String(event.sequence)} data-kind={RolloutEventKind[event.kind]}>
            <time>{timeOf(event.time)}</time> <strong>{enumWords(RolloutEventKind, event.kind)}</strong>
            {event.processType ? ` ${event.processType}` : ""}
            {event.replica ? ` ${event.replica}` : ""}
            {event.message ? ` — ${event.message}` : ""}
            {event.logTail.length > 0 && <pre class="log-tail">{event.logTail.join("\n")}</pre>}
          </li>
        ))}
      </ol>
    </Section>
  );
}
