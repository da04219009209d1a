import { useState } from "preact/hooks";
import type { AppChange } from "@berth/proto/api/v1/apps";
import type { Rollout } from "@berth/proto/type/v1/release";
import { ReleaseStatus } from "@berth/proto/type/v1/release";
import { canaryOutcome } from "./canary-section.js";
import { api } from "./rpc.js";
import { ErrorNote, Section, Table, enumWords, fieldIsWrong, timeOf, useAction, useLoad } from "./ui.js";

/** The releases, newest first, with status and why one failed or was rolled back; roll back to one. */
export function ReleasesSection({ app, change, onRollout }: { app: string; change: AppChange; onRollout: (rollout: Rollout) => void }) {
  const current = change.app!.currentReleaseVersion;
  const { data, error } = useLoad((signal) => api.apps.listReleases({ app }, { signal }), [app, current, change.app!.activeRolloutId]);
  const action = useAction();
  const rollback = async (version: number) => {
    const answer = await action.run(() => api.apps.rollback({ app, version, requestId: crypto.randomUUID() }));
    if (answer?.rollout) onRollout(answer.rollout);
  };
  const releases = [...(data?.releases ?? [])].sort((a, b) => b.version - a.version);
  return (
    <Section title="Releases" id="releases">
      <ErrorNote error={error ?? action.error} />
      <Table label="Releases" columns={["Version", "Status", "Description", "Canary", "Created", { hidden: "Roll back" }]}>
        {releases.map((release) => {
          const status = enumWords(ReleaseStatus, release.status);
          return (
            <tr key={release.version} data-version={release.version}>
              <th scope="row">
                v{release.version}
                {release.version === current ? " (current)" : ""}
              </th>
              <td>
                <span class={`state ${status.replaceAll(" ", "-")}`}>{status}</span>
                {release.failureReason && (
                  <div class="reason">
                    {release.failureReason}
                    {release.failureMessage ? `: ${release.failureMessage}` : ""}
                  </div>
                )}
              </td>
              <td>
                {release.description}
                {release.rollbackOfVersion > 0 ? ` (rollback to v${release.rollbackOfVersion})` : ""}
              </td>
              <td data-testid="canary-outcome">{release.canary ? canaryOutcome(release.canary, release.version) : "–"}</td>
              <td>{timeOf(release.createdAt)}</td>
              <td>
                {release.version !== current && release.status === ReleaseStatus.SUCCEEDED && (
                  <button type="button" onClick={() => rollback(release.version)} disabled={action.busy}>
                    Roll back to v{release.version}
                  </button>
                )}
              </td>
            </tr>
          );
        })}
      </Table>
    </Section>
  );
}

function ConfigRow({ name, value, onUnset, busy }: { name: string; value: string; onUnset: () => void; busy: boolean }) {
  const [shown, setShown] = useState(false);
  return (
    <tr data-key={name}>
      <th scope="row">
        <code>{name}</code>
      </th>
      <td>
        {shown ? <code class="value">{value}</code> : <span aria-hidden="true">••••••••</span>}
        {!shown && <span class="sr-only">hidden</span>}
      </td>
      <td>
        <button type="button" onClick={() => setShown(!shown)} aria-pressed={shown} aria-label={`${shown ? "Hide" : "Reveal"} ${name}`}>
          {shown ? "Hide" : "Reveal"}
        </button>{" "}
        <button type="button" onClick={onUnset} disabled={busy} aria-label={`Unset ${name}`}>
          Unset
        </button>
      </td>
    </tr>
  );
}

/** Config vars: values hidden until revealed; set and unset (each makes a release and a rollout). */
export function ConfigSection({ app, version, onRollout }: { app: string; version: number; onRollout: (rollout: Rollout) => void }) {
  const { data, error, reload } = useLoad((signal) => api.apps.getConfig({ app }, { signal }), [app, version]);
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const action = useAction();
  const update = async (set: Record<string, string>, unset: string[]) => {
    const answer = await action.run(() => api.apps.updateConfig({ app, set, unset, requestId: crypto.randomUUID() }));
    if (answer === undefined) return false;
    if (answer.rollout) onRollout(answer.rollout);
    reload();
    return true;
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (await update({ [key]: value }, [])) {
      setKey("");
      setValue("");
    }
  };
  const entries = Object.entries(data?.config ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return (
    <Section title="Config vars" id="config">
      <ErrorNote error={error} />
      <Table label="Config vars" empty={entries.length === 0 && "No config vars."}>
        {entries.map(([name, current]) => (
          <ConfigRow key={name} name={name} value={current} busy={action.busy} onUnset={() => void update({}, [name])} />
        ))}
      </Table>
      <form class="inline" onSubmit={submit} aria-label="Set a config var">
        <label for="config-key">Name</label>
        <input id="config-key" name="key" value={key} onInput={(event) => setKey(event.currentTarget.value)} aria-invalid={fieldIsWrong(action.error, "set")} />
        <label for="config-value">Value</label>
        <input id="config-value" name="value" type="password" autocomplete="off" value={value} onInput={(event) => setValue(event.currentTarget.value)} />
        <button type="submit" disabled={action.busy}>
          Set
        </button>
        <ErrorNote error={action.error} />
      </form>
    </Section>
  );
}
