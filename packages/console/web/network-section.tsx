import { useState } from "preact/hooks";
import { Code } from "@connectrpc/connect";
import type { TurnCredentials } from "@berth/proto/type/v1/network";
import type { ProcessFormation } from "@berth/proto/type/v1/process";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { api } from "./rpc.js";
import { ErrorNote, Section, Table, fieldIsWrong, timeOf, useAction, useLoad } from "./ui.js";

/** The rtc processes: TURN gateway, port, replica hostnames, and test credentials minted on demand. */
export function RtcSection({ app, processes }: { app: string; processes: ProcessFormation[] }) {
  const rtcTypes = processes.filter((process) => process.routingClass === RoutingClass.RTC);
  const { data, error } = useLoad((signal) => api.rtc.listAllocations({ app }, { signal }), [app, processes]);
  const [minted, setMinted] = useState<{ processType: string; credentials: TurnCredentials } | undefined>();
  const action = useAction();
  if (rtcTypes.length === 0) return null;
  const mint = async (processType: string) => {
    const answer = await action.run(() => api.rtc.getCredentials({ app, processType, user: "console-test", ttlSeconds: 600 }));
    if (answer?.credentials) setMinted({ processType, credentials: answer.credentials });
  };
  return (
    <Section title="rtc" id="rtc">
      <ErrorNote error={error ?? action.error} />
      <Table label="rtc processes" columns={["Process", "TURN", "Realm", "Replica hostnames", "Secret rotated", { hidden: "Credentials" }]}>
        {(data?.allocations ?? []).map((allocation) => {
          const exposure = allocation.exposure;
          return (
            <tr key={allocation.processType} data-type={allocation.processType}>
              <th scope="row">{allocation.processType}</th>
              <td>{exposure ? `${exposure.turnHostname}:${exposure.port}` : "allocating…"}</td>
              <td>{exposure?.realm ?? "–"}</td>
              <td>{exposure?.replicaHostnames.join(", ") || "–"}</td>
              <td>{timeOf(allocation.secretRotatedAt)}</td>
              <td>
                <button type="button" onClick={() => mint(allocation.processType)} disabled={action.busy}>
                  Mint test credentials
                </button>
              </td>
            </tr>
          );
        })}
      </Table>
      {minted && (
        <div class="minted">
          <p>
            iceServers for {minted.processType}, valid until {timeOf(minted.credentials.expiresAt)}:
          </p>
          <pre data-testid="ice-servers">
            {JSON.stringify(
              minted.credentials.iceServers.map(({ urls, username, credential }) => ({ urls, username, credential })),
              null,
              2,
            )}
          </pre>
        </div>
      )}
    </Section>
  );
}

/** Who may reach this app's tcp processes; add and remove apps of the team. */
export function TrustSection({ app, processes }: { app: string; processes: ProcessFormation[] }) {
  const hasTcp = processes.some((process) => process.routingClass === RoutingClass.TCP);
  const { data, error, reload } = useLoad((signal) => api.trust.getTrust({ app }, { signal }), [app]);
  const [other, setOther] = useState("");
  const action = useAction();
  if (!hasTcp) return null;
  const add = async (event: Event) => {
    event.preventDefault();
    if ((await action.run(() => api.trust.addTrust({ app, trustedApps: [other.trim()] }))) !== undefined) {
      setOther("");
      reload();
    }
  };
  const remove = async (trusted: string) => {
    if ((await action.run(() => api.trust.removeTrust({ app, trustedApp: trusted }))) !== undefined) reload();
  };
  const trusted = data?.trust?.trustedApps ?? [];
  return (
    <Section title="Trusted apps" id="trust">
      <p class="muted">Apps of your team that may reach this app's tcp processes.</p>
      <ErrorNote error={error} />
      <ul class="plain">
        {trusted.map((name) => (
          <li key={name} data-trusted={name}>
            {name}{" "}
            <button type="button" onClick={() => remove(name)} disabled={action.busy} aria-label={`Stop trusting ${name}`}>
              Remove
            </button>
          </li>
        ))}
        {trusted.length === 0 && <li>Nobody: only the app itself reaches its tcp processes.</li>}
      </ul>
      <form class="inline" onSubmit={add} aria-label="Trust an app">
        <label for="trust-app">Trust app</label>
        <input
          id="trust-app"
          name="trusted_apps"
          value={other}
          onInput={(event) => setOther(event.currentTarget.value)}
          aria-invalid={fieldIsWrong(action.error, "trusted_apps")}
          required
        />
        <button type="submit" disabled={action.busy}>
          Add
        </button>
        <ErrorNote error={action.error} />
      </form>
    </Section>
  );
}

/** The team's reachability matrix as netpol compiles it: who reaches which tcp process. */
export function TrustMatrix() {
  const { data, error } = useLoad((signal) => api.trust.getMatrix({}, { signal }), []);
  if (error?.code === Code.Unimplemented) return null;
  const entries = data?.entries ?? [];
  return (
    <>
      <ErrorNote error={error} />
      {entries.length === 0 ? (
        <p class="muted">No tcp processes in your team.</p>
      ) : (
        <Table label="Reachability matrix" columns={["From", "To", "Allowed"]}>
          {entries.map((entry) => (
            <tr key={`${entry.fromApp}>${entry.toApp}/${entry.toProcessType}:${entry.port}`}>
              <td>{entry.fromApp}</td>
              <td>
                {entry.toApp}/{entry.toProcessType}:{entry.port}
              </td>
              <td class={entry.allowed ? "allowed" : "denied"}>{entry.allowed ? "allowed" : "denied"}</td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
