import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { Code, type ConnectError } from "@connectrpc/connect";
import { fieldViolations, isCancel, noteFailure } from "./rpc.js";

/** A call the page makes on behalf of a button or form: busy while it runs, its error kept to show. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ConnectError | undefined>();
  const run = useCallback(async <T,>(call: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await call();
    } catch (failure) {
      setError(noteFailure(failure));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { run, busy, error, clear: () => setError(undefined) };
}

/** Failures a read may not meet when asked again: a section retries these rather than keep what it read before. */
const TRANSIENT = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.ResourceExhausted, Code.Internal, Code.Unknown]);
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 10_000;

/**
 * Data read when the page opens and again whenever `key` changes (a live
 * update). A read that fails transiently is retried with backoff, its error
 * shown meanwhile: the next key change may never come (a finished rollout
 * changes nothing more), and the section would show stale data for good.
 */
export function useLoad<T>(read: (signal: AbortSignal) => Promise<T>, key: unknown[]) {
  const [data, setData] = useState<T | undefined>();
  const [error, setError] = useState<ConnectError | undefined>();
  const [generation, setGeneration] = useState(0);
  const retryMs = useRef(FIRST_RETRY_MS);
  const readRef = useRef(read);
  readRef.current = read;
  // `key` lists what the read depends on; the read itself is taken from the latest render.
  useEffect(() => {
    const abort = new AbortController();
    let retry: ReturnType<typeof setTimeout> | undefined;
    readRef.current(abort.signal).then(
      (value) => {
        if (abort.signal.aborted) return;
        retryMs.current = FIRST_RETRY_MS;
        setData(value);
        setError(undefined);
      },
      (failure: unknown) => {
        if (abort.signal.aborted || isCancel(failure)) return;
        const noted = noteFailure(failure);
        setError(noted);
        if (!TRANSIENT.has(noted.code)) return;
        retry = setTimeout(() => setGeneration((n) => n + 1), retryMs.current);
        retryMs.current = Math.min(retryMs.current * 2, MAX_RETRY_MS);
      },
    );
    return () => {
      abort.abort();
      clearTimeout(retry);
    };
  }, [...key, generation]);
  return { data, error, reload: () => setGeneration((n) => n + 1) };
}

/** An API error as the user should read it: what failed and which field was wrong. */
export function ErrorNote({ error }: { error: ConnectError | undefined }) {
  if (error === undefined) return null;
  const violations = error.code === Code.InvalidArgument ? fieldViolations(error) : [];
  return (
    <div class="error" role="alert">
      <strong>{Code[error.code]}:</strong>
      {violations.length === 0 ? (
        <span> {error.rawMessage}</span>
      ) : (
        <ul>
          {violations.map((violation) => (
            <li key={violation.field} data-field={violation.field}>
              <code>{violation.field}</code>: {violation.description}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** True when the error names `field` (or a part of it, like `replicas[web]`). */
export function fieldIsWrong(error: ConnectError | undefined, field: string): boolean {
  if (error === undefined || error.code !== Code.InvalidArgument) return false;
  return fieldViolations(error).some(
    (violation) => violation.field === field || violation.field.startsWith(`${field}[`) || violation.field.startsWith(`${field}.`),
  );
}

/** A titled part of a page. */
export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section id={id} aria-labelledby={id ? `${id}-title` : undefined}>
      <h2 id={id ? `${id}-title` : undefined}>{title}</h2>
      {children}
    </section>
  );
}

/** A column heading; a hidden one is read by screen readers only (a column of buttons). */
export type Column = string | { hidden: string };

/**
 * A table with its column headings and its rows (the children), scrolling
 * sideways on a phone instead of overflowing the page. `empty`, when given,
 * is a row across the table saying why there is nothing to show.
 */
export function Table({ label, columns, empty, children }: { label: string; columns?: Column[]; empty?: string | false; children: ComponentChildren }) {
  return (
    <div class="table-scroll">
      <table aria-label={label}>
        {columns && (
          <thead>
            <tr>
              {columns.map((column) => (
                <th key={typeof column === "string" ? column : column.hidden} scope="col">
                  {typeof column === "string" ? column : <span class="sr-only">{column.hidden}</span>}
                </th>
              ))}
            </tr>
          </thead>
        )}
        <tbody>
          {children}
          {empty && (
            <tr>
              <td colSpan={columns?.length}>{empty}</td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** An enum value's name as words: RELEASE_STATUS_ROLLED_BACK's ROLLED_BACK -> "rolled back". */
export function enumWords(names: Record<number, string>, value: number): string {
  return (names[value] ?? String(value)).toLowerCase().replaceAll("_", " ");
}

/** A timestamp as local time, or a dash. */
export function timeOf(timestamp: { seconds: bigint; nanos: number } | undefined): string {
  if (timestamp === undefined) return "–";
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6)).toLocaleString();
}
