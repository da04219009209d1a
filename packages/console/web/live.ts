import { useEffect, useState } from "preact/hooks";
import type { AppChange } from "@berth/proto/api/v1/apps";
import { api, isCancel, noteFailure, session } from "./rpc.js";

/** The team's apps as the API's WatchApps stream last showed them. */
export interface LiveApps {
  apps: ReadonlyMap<string, AppChange>;
  /** False while the stream is down and being opened again. */
  connected: boolean;
  /** The stream's last error, shown while it reconnects. */
  error: string;
}

type Listener = (state: LiveApps) => void;

const MAX_BACKOFF_MS = 5_000;

/**
 * Follows WatchApps while someone listens: every page reads the apps from
 * this one stream (browsers allow few connections per origin over HTTP/1.1),
 * and a stream that ends is opened again with backoff, starting with a fresh
 * snapshot.
 */
function createLiveApps() {
  let state: LiveApps = { apps: new Map(), connected: false, error: "" };
  const listeners = new Set<Listener>();
  let abort: AbortController | undefined;

  const publish = (next: Partial<LiveApps>) => {
    state = { ...state, ...next };
    for (const listener of listeners) listener(state);
  };

  async function follow(signal: AbortSignal) {
    let backoffMs = 250;
    while (!signal.aborted) {
      try {
        for await (const message of api.apps.watchApps({}, { signal })) {
          const apps = new Map(message.snapshot ? [] : state.apps);
          for (const change of message.apps) {
            const name = change.app?.name ?? "";
            if (change.deleted) apps.delete(name);
            else apps.set(name, change);
          }
          backoffMs = 250;
          publish({ apps, connected: true, error: "" });
        }
      } catch (error) {
        if (signal.aborted || isCancel(error)) return;
        publish({ connected: false, error: noteFailure(error).rawMessage });
      }
      if (session.token() === null) return;
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  return {
    subscribe(listener: Listener): () => void {
      listeners.add(listener);
      listener(state);
      if (abort === undefined) {
        abort = new AbortController();
        void follow(abort.signal);
      }
      return () => {
        listeners.delete(listener);
      };
    },
    /** Stops the stream and forgets the apps (on sign-out). */
    stop(): void {
      abort?.abort();
      abort = undefined;
      state = { apps: new Map(), connected: false, error: "" };
    },
  };
}

/** The one WatchApps stream of this tab. */
export const liveApps = createLiveApps();

/** The live apps, re-rendering on every change. */
export function useLiveApps(): LiveApps {
  const [state, setState] = useState<LiveApps>({ apps: new Map(), connected: false, error: "" });
  useEffect(() => liveApps.subscribe(setState), []);
  return state;
}
