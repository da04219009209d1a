import { useEffect, useRef, useState } from "preact/hooks";
import type { LogLine } from "@berth/proto/type/v1/process";
import { LogStream } from "@berth/proto/type/v1/process";
import type { ProcessFormation } from "@berth/proto/type/v1/process";
import { api, isCancel, noteFailure } from "./rpc.js";
import { Section, useLoad } from "./ui.js";

/** Lines kept on the page; older ones go, so a chatty app never slows it down. */
export const MAX_LOG_LINES = 1_000;
/** Lines arrive as fast as they come but reach the page at most this often, in one batch. */
const FLUSH_EVERY_MS = 100;

function lineElement(line: LogLine): HTMLElement {
  const element = document.createElement("div");
  element.className = line.stream === LogStream.STDERR ? "line stderr" : line.stream === LogStream.SYSTEM ? "line system" : "line";
  element.textContent = `${line.replica || line.processType} ${line.text}`;
  return element;
}

/**
 * Follows StreamLogs with the chosen filters. Lines are queued as they arrive
 * and written to the page in one batch per FLUSH_EVERY_MS as plain DOM nodes
 * (no re-render), and only the last MAX_LOG_LINES are kept, queued or shown:
 * at 1,000 lines a second the page does ten small updates a second. Paused,
 * lines are still received (the stream stays open) but not shown until resumed.
 */
export function LogsSection({ app, processes }: { app: string; processes: ProcessFormation[] }) {
  const [processType, setProcessType] = useState("");
  const [replica, setReplica] = useState("");
  const [paused, setPaused] = useState(false);
  const [status, setStatus] = useState("connecting…");
  const [held, setHeld] = useState(0);
  const output = useRef<HTMLDivElement>(null);
  const queue = useRef<LogLine[]>([]);
  const pausedRef = useRef(false);
  pausedRef.current = paused;
  // The replicas to pick from, again whenever the formation changes (a scale, a rollout).
  const { data: replicas } = useLoad((signal) => api.formation.listReplicas({ app, processType }, { signal }), [app, processType, processes]);

  useEffect(() => {
    const abort = new AbortController();
    const box = output.current!;
    box.replaceChildren();
    queue.current = [];
    setStatus("connecting…");
    const flush = () => {
      if (pausedRef.current) {
        setHeld(queue.current.length);
        return;
      }
      const lines = queue.current;
      if (lines.length === 0) return;
      queue.current = [];
      setHeld(0);
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      const fragment = document.createDocumentFragment();
      for (const line of lines) fragment.append(lineElement(line));
      box.append(fragment);
      for (let extra = box.childElementCount - MAX_LOG_LINES; extra > 0; extra--) box.firstElementChild!.remove();
      if (atBottom) box.scrollTop = box.scrollHeight;
    };
    const timer = setInterval(flush, FLUSH_EVERY_MS);
    (async () => {
      try {
        const lines = api.formation.streamLogs({ app, processType, replica, tailLines: 200, follow: true }, { signal: abort.signal });
        setStatus("following");
        for await (const { line } of lines) {
          if (!line) continue;
          const pending = queue.current;
          pending.push(line);
          if (pending.length > MAX_LOG_LINES * 2) pending.splice(0, pending.length - MAX_LOG_LINES);
        }
        setStatus("ended");
      } catch (error) {
        if (!abort.signal.aborted && !isCancel(error)) setStatus(`stopped: ${noteFailure(error).rawMessage}`);
      }
    })();
    return () => {
      abort.abort();
      clearInterval(timer);
    };
  }, [app, processType, replica]);

  return (
    <Section title="Logs" id="logs">
      <form class="inline" onSubmit={(event) => event.preventDefault()} aria-label="Log filters">
        <label for="log-type">Type</label>
        <select
          id="log-type"
          value={processType}
          onChange={(event) => {
            setProcessType(event.currentTarget.value);
            setReplica("");
          }}
        >
          <option value="">all</option>
          {processes.map((process) => (
            <option key={process.processType} value={process.processType}>
              {process.processType}
            </option>
          ))}
        </select>
        <label for="log-replica">Replica</label>
        <select id="log-replica" value={replica} onChange={(event) => setReplica(event.currentTarget.value)}>
          <option value="">all</option>
          {(replicas?.replicas ?? []).map((one) => (
            <option key={one.name} value={one.name}>
              {one.name}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>
          {paused ? "Resume" : "Pause"}
        </button>
        <button type="button" onClick={() => output.current?.replaceChildren()}>
          Clear
        </button>
        <span role="status" class="muted" data-testid="log-status">
          {status}
          {paused && held > 0 ? `, ${held} new lines held` : ""}
        </span>
      </form>
      <div class="logs" ref={output} role="log" aria-label="Log lines" data-testid="log-lines" />
    </Section>
  );
}
