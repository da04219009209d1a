import type { ServerResponse } from "node:http";
import type { JsonObject } from "./patch.js";
import { StatusError } from "./status.js";

/** A change to one stored object, as kept in the event history. */
export interface ChangeEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** The resourceVersion this change produced. */
  resourceVersion: number;
  /** Which collection changed: `group/version/plural`. */
  collection: string;
  /** The object after the change (for DELETED: its last state). */
  object: JsonObject;
  /** The object before a MODIFIED change, so selector watches can see objects enter and leave. */
  previous?: JsonObject;
}

/** The bounded change history of one fake server and its live subscribers. */
export interface EventLog {
  publish(event: ChangeEvent): void;
  /** The changes to `collection` after `resourceVersion`, or undefined when the history no longer reaches back that far. */
  since(collection: string, resourceVersion: number): ChangeEvent[] | undefined;
  /** Calls `listener` with every later change to `collection`; returns the unsubscribe function. */
  subscribe(collection: string, listener: (event: ChangeEvent) => void): () => void;
}

/**
 * Creates an event log that keeps the last `limit` changes of all
 * collections, like etcd after compaction: a watch from an older
 * resourceVersion is answered 410 Expired.
 */
export function createEventLog(limit: number, startResourceVersion: number): EventLog {
  const history: ChangeEvent[] = [];
  let compactedThrough = startResourceVersion;
  const listeners = new Map<string, Set<(event: ChangeEvent) => void>>();
  return {
    publish(event) {
      history.push(event);
      while (history.length > limit) compactedThrough = history.shift()!.resourceVersion;
      for (const listener of [...(listeners.get(event.collection) ?? [])]) listener(event);
    },
    since(collection, resourceVersion) {
      if (resourceVersion < compactedThrough) return undefined;
      return history.filter((event) => event.collection === collection && event.resourceVersion > resourceVersion);
    },
    subscribe(collection, listener) {
      let set = listeners.get(collection);
      if (set === undefined) listeners.set(collection, (set = new Set()));
      set.add(listener);
      return () => set.delete(listener);
    },
  };
}

/** What one watch request asked for. */
export interface WatchRequest {
  collection: string;
  /** apiVersion and kind for BOOKMARK objects. */
  apiVersion: string;
  kind: string;
  /** Which objects the watcher sees (namespace, label and field selectors). */
  matches: (object: JsonObject) => boolean;
  /** The `resourceVersion` parameter; undefined or "0" starts with the current state. */
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  /** `sendInitialEvents=true`: end the initial ADDED events with a bookmark marked `k8s.io/initial-events-end`. */
  sendInitialEvents: boolean;
  timeoutSeconds: number | undefined;
  bookmarkIntervalMs: number;
  /** How an object is sent (e.g. as a one-row Table for kubectl get --watch); as stored by default. */
  present?: (object: JsonObject) => unknown;
}

/** What a watch needs from the store. */
export interface WatchSource {
  log: EventLog;
  /** The objects currently in the collection, for a watch without a resourceVersion. */
  current: () => JsonObject[];
  currentResourceVersion: () => number;
}

/**
 * Parses a watch `resourceVersion` parameter; a malformed one is a
 * BadRequest before the stream starts.
 */
export function parseWatchResourceVersion(value: string | undefined): number | undefined {
  if (value === undefined || value === "" || value === "0") return undefined;
  if (!/^\d+$/.test(value)) throw new StatusError("BadRequest", `invalid resource version: ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * Streams a watch as newline-delimited JSON events until the client goes,
 * `timeoutSeconds` passes or the returned stop function is called.
 * Replays history after the requested resourceVersion (or sends the current
 * objects as ADDED when none is given), then follows live changes. An object
 * entering or leaving the watcher's selection is ADDED or DELETED, as with
 * the real watch cache.
 */
export function serveWatch(response: ServerResponse, request: WatchRequest, source: WatchSource): () => void {
  const from = parseWatchResourceVersion(request.resourceVersion);
  response.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache" });
  // Clients wait for the headers before they consider the watch open; do not hold them until the first event.
  response.flushHeaders();
  const send = (type: string, object: unknown) => response.write(`${JSON.stringify({ type, object })}\n`);
  const sendObject = (type: string, object: JsonObject) => send(type, request.present ? request.present(object) : object);
  const bookmark = (annotations?: Record<string, string>) =>
    send("BOOKMARK", {
      apiVersion: request.apiVersion,
      kind: request.kind,
      metadata: { resourceVersion: String(source.currentResourceVersion()), ...(annotations ? { annotations } : {}) },
    });
  const deliver = (event: ChangeEvent) => {
    const now = request.matches(event.object);
    const before = event.previous !== undefined && request.matches(event.previous);
    if (event.type === "MODIFIED" && now !== before) sendObject(now ? "ADDED" : "DELETED", event.object);
    else if (now) sendObject(event.type, event.object);
  };

  const timers: NodeJS.Timeout[] = [];
  let unsubscribe = () => {};
  const stop = () => {
    unsubscribe();
    for (const timer of timers) clearTimeout(timer);
    if (!response.writableEnded) response.end();
  };
  response.on("close", stop);

  if (from === undefined) {
    for (const object of source.current()) if (request.matches(object)) sendObject("ADDED", object);
    if (request.sendInitialEvents && request.allowBookmarks) bookmark({ "k8s.io/initial-events-end": "true" });
  } else {
    const missed = source.log.since(request.collection, from);
    if (missed === undefined) {
      // Like the real watch cache: the stream opens, then carries one ERROR event with a 410 Status.
      const expired = new StatusError("Expired", `too old resource version: ${from} (${source.currentResourceVersion()})`);
      send("ERROR", expired.status);
      stop();
      return stop;
    }
    for (const event of missed) deliver(event);
  }
  unsubscribe = source.log.subscribe(request.collection, deliver);
  if (request.allowBookmarks) {
    const interval = setInterval(() => bookmark(), request.bookmarkIntervalMs);
    timers.push(interval);
  }
  if (request.timeoutSeconds !== undefined) timers.push(setTimeout(stop, request.timeoutSeconds * 1000));
  return stop;
}
