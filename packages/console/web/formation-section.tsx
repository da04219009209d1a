import { useState } from "preact/hooks";
import type { AppChange } from "@berth/proto/api/v1/apps";
import type { PodSize, ProcessFormation } from "@berth/proto/type/v1/process";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import type { Rollout } from "@berth/proto/type/v1/release";
import { api } from "./rpc.js";
import { ErrorNote, Section, Table, enumWords, fieldIsWrong, timeOf, useAction, useLoad } from "./ui.js";

/** Where a process is reachable, by its routing class. */
function reachableAt(process: ProcessFormation): string[] {
  switch (process.routingClass) {
    case RoutingClass.WEB:
      return process.urls;
    case RoutingClass.TCP:
      return process.internalHostname ? [`${process.internalHostname}${process.internalPort ? `:${process.internalPort}` : ""} (private)`] : [];
    case RoutingClass.RTC:
      return process.rtc ? [`turn:${process.rtc.turnHostname}:${process.rtc.port}`] : [];
    default:
      return [];
  }
}

function autoscaleText(process: ProcessFormation): string {
  const rule = process.autoscale;
  if (!rule) return "off";
  return `${rule.minReplicas}–${rule.maxReplicas} at ${rule.targetCpuPercent}% cpu`;
}

function ProcessRow({ app, process, sizes, onRollout }: { app: string; process: ProcessFormation; sizes: PodSize[]; onRollout: (rollout: Rollout) => void }) {
  const type = process.processType;
  const [replicas, setReplicas] = useState(String(process.replicas));
  const [size, setSize] = useState(process.size);
  const { run, busy, error } = useAction();
  const scale = (event: Event) => {
    event.preventDefault();
    void run(() => api.formation.scale({ app, replicas: { [type]: Number(replicas) } }));
  };
  const resize = () => void run(() => api.formation.resize({ app, changes: [{ processType: type, size }] }));
  const restart = async () => {
    const answer = await run(() => api.formation.restartProcess({ app, processType: type }));
    if (answer?.rollout) onRollout(answer.rollout);
  };
  return (
    <>
      <tr data-type={type}>
        <th scope="row">{type}</th>
        <td>{enumWords(RoutingClass, process.routingClass)}</td>
        <td data-testid={`ready-${type}`}>
          {process.readyReplicas}/{process.replicas}
        </td>
        <td>{process.size}</td>
        <td>
          {process.cpuMillis}m / {process.memoryMb} MB
        </td>
        <td>{autoscaleText(process)}</td>
        <td>
          {reachableAt(process).map((where) =>
            where.startsWith("https://") || where.startsWith("http://") ? (
              <a key={where} href={where} class="url" target="_blank" rel="noreferrer">
                {where}
              </a>
            ) : (
              <span key={where} class="url">
                {where}
              </span>
            ),
          )}
        </td>
        <td class="controls">
          <form class="inline" onSubmit={scale} aria-label={`Scale ${type}`}>
            <label class="sr-only" for={`replicas-${type}`}>
              Replicas of {type}
            </label>
            <input
              id={`replicas-${type}`}
              name="replicas"
              class="narrow"
              type="number"
              min={0}
              required
              value={replicas}
              onInput={(event) => setReplicas(event.currentTarget.value)}
              aria-invalid={fieldIsWrong(error, "replicas")}
            />
            <button type="submit" disabled={busy}>
              Scale
            </button>
          </form>
          <label class="sr-only" for={`size-${type}`}>
            Size of {type}
          </label>
          <select id={`size-${type}`} value={size} onChange={(event) => setSize(event.currentTarget.value)} aria-invalid={fieldIsWrong(error, "changes")}>
            {sizes.map((option) => (
              <option key={option.name} value={option.name}>
                {option.name} ({option.cpuMillis}m, {option.memoryMb} MB)
              </option>
            ))}
          </select>
          <button type="button" onClick={resize} disabled={busy || size === process.size}>
            Resize
          </button>
          <button type="button" onClick={restart} disabled={busy}>
            Restart
          </button>
        </td>
      </tr>
      {error && (
        <tr>
          <td colSpan={8}>
            <ErrorNote error={error} />
          </td>
        </tr>
      )}
    </>
  );
}

/** The formation: one row per process type with its scale, size and restart controls. */
export function FormationSection({ app, processes, onRollout }: { app: string; processes: ProcessFormation[]; onRollout: (rollout: Rollout) => void }) {
  const { data } = useLoad((signal) => api.formation.listPodSizes({}, { signal }), []);
  return (
    <Section title="Formation" id="formation">
      <Table label="Formation" columns={["Type", "Routing", "Ready", "Size", "CPU / memory", "Autoscale", "Reachable at", "Change"]}>
        {processes.map((process) => (
          // Keyed by what the API says, so the inputs start over when a change lands.
          <ProcessRow
            key={`${process.processType}:${process.replicas}:${process.size}`}
            app={app}
            process={process}
            sizes={data?.sizes ?? []}
            onRollout={onRollout}
          />
        ))}
      </Table>
      {processes.length === 0 && <p>No process types yet: deploy a release first.</p>}
    </Section>
  );
}

/** The replicas (`ps`), read again on every live change of the app. */
export function ReplicasSection({ app, change }: { app: string; change: AppChange }) {
  const { data, error, reload } = useLoad((signal) => api.formation.listReplicas({ app }, { signal }), [app, change]);
  const action = useAction();
  const remove = async (replica: string) => {
    await action.run(() => api.formation.deleteReplica({ app, replica }));
    reload();
  };
  return (
    <Section title="Replicas" id="replicas">
      <ErrorNote error={error ?? action.error} />
      <Table label="Replicas" columns={["Replica", "State", "Restarts", "Zone", "Release", "Started", { hidden: "Delete" }]}>
        {(data?.replicas ?? []).map((replica) => (
          <tr key={replica.name} data-replica={replica.name} data-type={replica.processType}>
            <th scope="row">{replica.name}</th>
            <td>
              {enumWords(ReplicaState, replica.state)}
              {replica.ready ? ", ready" : ""}
              {replica.lastExitReason ? ` (${replica.lastExitReason})` : ""}
            </td>
            <td>{replica.restarts}</td>
            <td>{replica.zone || "–"}</td>
            <td>v{replica.releaseVersion}</td>
            <td>{timeOf(replica.startedAt)}</td>
            <td>
              <button type="button" onClick={() => remove(replica.name)} disabled={action.busy} aria-label={`Delete replica ${replica.name}`}>
                Delete
              </button>
            </td>
          </tr>
        ))}
      </Table>
    </Section>
  );
}
