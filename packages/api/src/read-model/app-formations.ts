import type { AppVersion, WatchAppsResponse } from "@berth/proto/scheduler/v1/scheduler";
import type { ProcessFormation } from "@berth/proto/type/v1/process";

/**
 * Every app's process types as the scheduler's WatchApps stream shows them,
 * each with the app's version, so that the formation view costs no call to
 * the scheduler. A read that must show a given write (one this API made, or
 * one a client names by the version it was answered) waits briefly for the
 * stream to show it, and is the scheduler's to answer if it does not.
 */
export interface AppFormations {
  /**
   * The process types of `app` holding every change up to `least` (and up to
   * any write this API made), or undefined when they must be asked of the
   * scheduler. Waits up to `waitMs` for the stream to show such a version.
   */
  read(app: string, least: AppVersion | undefined, waitMs: number, signal: AbortSignal): Promise<readonly ProcessFormation[] | undefined>;
  /** A new attempt to open the stream begins. */
  opening(): void;
  /** Applies one WatchApps message. */
  apply(message: WatchAppsResponse): void;
  /** The stream is down: nothing is answered until the next snapshot. */
  down(): void;
  /** This API changed `app`; the scheduler answered with `version`, the first that holds the change. */
  wrote(app: string, version: AppVersion | undefined): void;
}

interface Shown {
  processes: readonly ProcessFormation[];
  instance: string;
  generation: bigint;
}

interface Written {
  /** Opening attempt during which the write was answered: a later attempt's snapshot holds it. */
  attempt: number;
  version: AppVersion | undefined;
}

/** Creates an empty view, answering nothing until a snapshot arrives. */
export function createAppFormations(): AppFormations {
  let live = false;
  let attempt = 0;
  // The scheduler instance of the last message: a version of another one cannot be waited for.
  let instance = "";
  const shown = new Map<string, Shown>();
  const written = new Map<string, Written>();
  const waiters = new Map<string, Set<() => void>>();

  const holds = (entry: Shown | undefined, version: AppVersion) =>
    entry !== undefined && entry.instance === version.instance && entry.generation >= version.generation;

  /** Whether what is shown of `app` holds `least` and this API's own write: true, false, or "never" (the stream cannot show it). */
  function state(app: string, least: AppVersion | undefined): boolean | "never" {
    if (!live) return "never";
    const entry = shown.get(app);
    const own = written.get(app);
    if (own !== undefined) {
      if (own.attempt < attempt) written.delete(app);
      else if (own.version === undefined || own.version.instance !== instance) return "never";
      else if (!holds(entry, own.version)) return false;
      else written.delete(app);
    }
    if (least === undefined) return entry !== undefined ? true : "never";
    if (least.instance !== instance) return "never";
    return holds(entry, least);
  }

  function wake(app: string): void {
    for (const waiter of waiters.get(app) ?? []) waiter();
  }

  function wait(app: string, waitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = waiters.get(app);
      if (set === undefined) waiters.set(app, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        set.delete(done);
        if (set.size === 0 && waiters.get(app) === set) waiters.delete(app);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      signal.addEventListener("abort", done);
      set.add(done);
    });
  }

  return {
    async read(app, least, waitMs, signal) {
      const deadline = performance.now() + waitMs;
      for (;;) {
        const now = state(app, least);
        if (now === true) return shown.get(app)!.processes;
        const left = deadline - performance.now();
        if (now === "never" || left <= 0 || signal.aborted) return undefined;
        await wait(app, left, signal);
      }
    },
    opening() {
      attempt++;
    },
    apply(message) {
      if (message.snapshot) {
        shown.clear();
        live = true;
      }
      for (const entry of message.apps) {
        if (!entry.app) continue;
        const name = entry.app.name;
        if (entry.version) instance = entry.version.instance;
        if (entry.deleted) shown.delete(name);
        else shown.set(name, { processes: entry.processes, instance: entry.version?.instance ?? "", generation: entry.version?.generation ?? 0n });
        if (!message.snapshot) wake(name);
      }
      if (message.snapshot) for (const app of [...waiters.keys()]) wake(app);
    },
    down() {
      live = false;
      shown.clear();
      for (const app of [...waiters.keys()]) wake(app);
    },
    wrote(app, version) {
      const earlier = written.get(app);
      // Of two writes answered by one scheduler, the later version holds both.
      if (
        earlier?.version &&
        version &&
        earlier.attempt === attempt &&
        earlier.version.instance === version.instance &&
        earlier.version.generation > version.generation
      )
        return;
      written.set(app, { attempt, version });
    },
  };
}
