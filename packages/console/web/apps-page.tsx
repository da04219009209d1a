import { useState } from "preact/hooks";
import type { AppChange } from "@berth/proto/api/v1/apps";
import { ReleaseStatus } from "@berth/proto/type/v1/release";
import { useLiveApps } from "./live.js";
import { api } from "./rpc.js";
import { TrustMatrix } from "./network-section.js";
import { ErrorNote, Section, Table, enumWords, fieldIsWrong, useAction, useLoad } from "./ui.js";

/** Every public URL of an app's web processes. */
export function urlsOf(change: AppChange): string[] {
  return change.processes.flatMap((process) => process.urls);
}

/** The outcome of an app's last rollout: "rolling out" while one runs, else its current release's status. */
function LastRollout({ change }: { change: AppChange }) {
  const app = change.app!;
  const { data } = useLoad((signal) => api.apps.listReleases({ app: app.name }, { signal }), [app.name, app.currentReleaseVersion, app.activeRolloutId]);
  if (app.activeRolloutId !== "") return <span class="state rolling">rolling out</span>;
  const latest = data?.releases.reduce((a, b) => (b.version > a.version ? b : a), data.releases[0]!);
  if (latest === undefined) return <span class="state">no release</span>;
  const words = enumWords(ReleaseStatus, latest.status);
  return (
    <span class={`state ${words.replaceAll(" ", "-")}`}>
      v{latest.version} {words}
    </span>
  );
}

function CreateApp() {
  const [name, setName] = useState("");
  const { run, busy, error } = useAction();
  async function submit(event: Event) {
    event.preventDefault();
    const created = await run(() => api.apps.createApp({ name: name.trim(), requestId: crypto.randomUUID() }));
    if (created) {
      setName("");
      location.hash = `#/apps/${encodeURIComponent(created.app?.name ?? "")}`;
    }
  }
  return (
    <form class="inline" onSubmit={submit} aria-label="Create an app">
      <label for="new-app">New app</label>
      <input
        id="new-app"
        name="name"
        value={name}
        onInput={(event) => setName(event.currentTarget.value)}
        aria-invalid={fieldIsWrong(error, "name")}
        required
      />
      <button type="submit" disabled={busy}>
        Create
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

/** The team's apps, live: current release, last rollout and URLs; create one. */
export function AppsPage() {
  const live = useLiveApps();
  const apps = [...live.apps.values()].sort((a, b) => (a.app!.name < b.app!.name ? -1 : 1));
  return (
    <>
      <h1>
        Apps <LiveBadge connected={live.connected} error={live.error} />
      </h1>
      <CreateApp />
      <Table
        label="Apps"
        columns={["App", "Release", "Last rollout", "URLs"]}
        empty={apps.length === 0 && live.connected && "No apps yet: create one above, then `berth deploy DIR --app NAME`."}
      >
        {apps.map((change) => (
          <tr key={change.app!.name} data-app={change.app!.name}>
            <th scope="row">
              <a href={`#/apps/${encodeURIComponent(change.app!.name)}`}>{change.app!.name}</a>
            </th>
            <td>{change.app!.currentReleaseVersion > 0 ? `v${change.app!.currentReleaseVersion}` : "–"}</td>
            <td>
              <LastRollout change={change} />
            </td>
            <td>
              {urlsOf(change).map((url) => (
                <a key={url} href={url} rel="noreferrer" target="_blank" class="url">
                  {url}
                </a>
              ))}
            </td>
          </tr>
        ))}
      </Table>
      <Section title="Reachability" id="matrix">
        <TrustMatrix />
      </Section>
    </>
  );
}

/** Whether the live stream is up. */
export function LiveBadge({ connected, error }: { connected: boolean; error: string }) {
  return (
    <span class={connected ? "live on" : "live off"} title={error || undefined} data-testid="live">
      {connected ? "live" : error ? "reconnecting…" : "connecting…"}
    </span>
  );
}
