import { useEffect, useState } from "preact/hooks";
import type { Rollout } from "@berth/proto/type/v1/release";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { LiveBadge } from "./apps-page.js";
import { ConfigSection, ReleasesSection } from "./releases-section.js";
import { DomainsSection } from "./domains-section.js";
import { FormationSection, ReplicasSection } from "./formation-section.js";
import { useLiveApps } from "./live.js";
import { LogsSection } from "./logs-section.js";
import { RtcSection, TrustSection } from "./network-section.js";
import { api } from "./rpc.js";
import { RolloutSection } from "./rollout-section.js";
import { ErrorNote, Section, useAction } from "./ui.js";

const TABS = [
  ["overview", "Overview"],
  ["logs", "Logs"],
  ["releases", "Releases & config"],
  ["domains", "Domains"],
  ["network", "Network"],
] as const;

function DestroyApp({ name }: { name: string }) {
  const [typed, setTyped] = useState("");
  const { run, busy, error } = useAction();
  async function submit(event: Event) {
    event.preventDefault();
    if (typed !== name) return;
    if ((await run(() => api.apps.deleteApp({ app: name }, { timeoutMs: 120_000 }))) !== undefined) location.hash = "#/";
  }
  return (
    <Section title="Destroy" id="destroy">
      <form class="inline danger" onSubmit={submit} aria-label="Destroy the app">
        <label for="confirm-name">
          Type <code>{name}</code> to destroy the app, its processes, routes, domains and certificates
        </label>
        <input id="confirm-name" name="confirm" autocomplete="off" value={typed} onInput={(event) => setTyped(event.currentTarget.value)} />
        <button type="submit" class="danger" disabled={busy || typed !== name}>
          {busy ? "Destroying…" : "Destroy"}
        </button>
        <ErrorNote error={error} />
      </form>
    </Section>
  );
}

/** One app: its tabs, kept live by the WatchApps stream. */
export function AppPage({ name, tab }: { name: string; tab: string }) {
  const live = useLiveApps();
  const change = live.apps.get(name);
  // A rollout this page started (restart, rollback, config change) is followed
  // at once, before the stream reports it as the app's active rollout.
  const [started, setStarted] = useState<Rollout | undefined>();
  const activeId = change?.app?.activeRolloutId ?? "";
  const [followed, setFollowed] = useState("");
  useEffect(() => {
    if (activeId !== "") setFollowed(activeId);
  }, [activeId]);
  useEffect(() => {
    if (started) setFollowed(started.id);
  }, [started]);

  if (change === undefined) {
    return (
      <>
        <h1>{name}</h1>
        <p role="status">{live.connected ? `No app "${name}" in your team.` : "Loading…"}</p>
        <a href="#/">All apps</a>
      </>
    );
  }
  const processes = change.processes;
  const hasNetwork = processes.some((process) => process.routingClass === RoutingClass.TCP || process.routingClass === RoutingClass.RTC);
  const tabs = TABS.filter(([id]) => id !== "network" || hasNetwork);
  const current = tabs.some(([id]) => id === tab) ? tab : "overview";
  const version = change.app!.currentReleaseVersion;
  return (
    <>
      <h1>
        {name} <span class="muted">{version > 0 ? `v${version}` : "no release yet"}</span> <LiveBadge connected={live.connected} error={live.error} />
      </h1>
      <nav class="tabs" aria-label="App sections">
        {tabs.map(([id, label]) => (
          <a key={id} href={`#/apps/${encodeURIComponent(name)}/${id}`} aria-current={id === current ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {current === "overview" && (
        <>
          {followed !== "" && <RolloutSection app={name} rolloutId={followed} />}
          <FormationSection app={name} processes={processes} onRollout={setStarted} />
          <ReplicasSection app={name} change={change} />
          <DestroyApp name={name} />
        </>
      )}
      {current === "logs" && <LogsSection app={name} processes={processes} />}
      {current === "releases" && (
        <>
          {followed !== "" && <RolloutSection app={name} rolloutId={followed} />}
          <ReleasesSection app={name} change={change} onRollout={setStarted} />
          <ConfigSection app={name} version={version} onRollout={setStarted} />
        </>
      )}
      {current === "domains" && <DomainsSection app={name} processes={processes} />}
      {current === "network" && (
        <>
          <RtcSection app={name} processes={processes} />
          <TrustSection app={name} processes={processes} />
        </>
      )}
    </>
  );
}
