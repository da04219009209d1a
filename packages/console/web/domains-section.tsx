import { useState } from "preact/hooks";
import { CertificateState } from "@berth/proto/type/v1/network";
import type { ProcessFormation } from "@berth/proto/type/v1/process";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { api } from "./rpc.js";
import { ErrorNote, Section, Table, enumWords, fieldIsWrong, timeOf, useAction, useLoad } from "./ui.js";

/** Platform URLs and custom domains per web process with their certificates; add and remove custom domains. */
export function DomainsSection({ app, processes }: { app: string; processes: ProcessFormation[] }) {
  const webTypes = processes.filter((process) => process.routingClass === RoutingClass.WEB).map((process) => process.processType);
  // The formation changes when a domain is attached (its custom domains), which reads the routes again.
  const { data, error, reload } = useLoad((signal) => api.domains.listDomains({ app }, { signal }), [app, processes]);
  const [hostname, setHostname] = useState("");
  const [processType, setProcessType] = useState(webTypes[0] ?? "web");
  const action = useAction();
  const add = async (event: Event) => {
    event.preventDefault();
    if ((await action.run(() => api.domains.addDomain({ app, processType, hostname: hostname.trim() }))) !== undefined) {
      setHostname("");
      reload();
    }
  };
  const remove = async (name: string) => {
    if ((await action.run(() => api.domains.removeDomain({ app, hostname: name }))) !== undefined) reload();
  };
  const routes = [...(data?.routes ?? [])].sort((a, b) => a.processType.localeCompare(b.processType) || Number(a.customDomain) - Number(b.customDomain));
  return (
    <Section title="Domains" id="domains">
      <ErrorNote error={error} />
      <Table label="Domains" columns={["Hostname", "Process", "Certificate", "Healthy", { hidden: "Remove" }]}>
        {routes.map((route) => {
          const certificate = route.certificate;
          const state = certificate ? enumWords(CertificateState, certificate.state) : "none";
          return (
            <tr key={route.hostname} data-hostname={route.hostname}>
              <th scope="row">
                {/* The router's URL says how it serves the hostname (HTTPS only with its own certificate): none is guessed. */}
                {route.url ? (
                  <a href={route.url} target="_blank" rel="noreferrer">
                    {route.hostname}
                  </a>
                ) : (
                  route.hostname
                )}
                {route.customDomain ? " (custom)" : " (platform)"}
              </th>
              <td>{route.processType}</td>
              <td>
                <span class={`state ${state}`}>{state}</span>
                {certificate?.notAfter ? ` until ${timeOf(certificate.notAfter)}` : ""}
                {certificate?.lastError ? <div class="reason">{certificate.lastError}</div> : null}
              </td>
              <td>{route.healthyEndpoints}</td>
              <td>
                {route.customDomain && (
                  <button type="button" onClick={() => remove(route.hostname)} disabled={action.busy} aria-label={`Remove ${route.hostname}`}>
                    Remove
                  </button>
                )}
              </td>
            </tr>
          );
        })}
      </Table>
      <form class="inline" onSubmit={add} aria-label="Add a custom domain">
        <label for="domain-hostname">Custom domain</label>
        <input
          id="domain-hostname"
          name="hostname"
          placeholder="www.example.com"
          value={hostname}
          onInput={(event) => setHostname(event.currentTarget.value)}
          aria-invalid={fieldIsWrong(action.error, "hostname")}
          required
        />
        <label for="domain-process">for</label>
        <select id="domain-process" value={processType} onChange={(event) => setProcessType(event.currentTarget.value)}>
          {webTypes.map((type) => (
            <option key={type} value={type}>
              {type}
            </option>
          ))}
        </select>
        <button type="submit" disabled={action.busy || webTypes.length === 0}>
          Add
        </button>
        <ErrorNote error={action.error} />
      </form>
    </Section>
  );
}
