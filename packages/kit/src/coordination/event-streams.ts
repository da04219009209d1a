import type { EventStreams, StreamEvent, SubscribeOptions } from "./coordination.js";
import { requireNonEmpty } from "./coordination-arguments.js";
import { STREAM_START_ID, checkStreamPosition, parseStreamId, streamGapError } from "./stream-ids.js";

/** How many events a subscriber fetches per read. */
export const STREAM_READ_BATCH = 100;

/** A blocking reader of one stream, owned by one subscription. */
export interface StreamReader {
  /**
   * Up to STREAM_READ_BATCH events after `after`, in id order, waiting until there
   * is at least one; resolves empty only once the reader is closed.
   */
  read(after: string): Promise<StreamEvent[]>;
  /** Wakes a pending read and frees what the reader holds; idempotent. */
  close(): void;
  readonly closed: boolean;
}

/** What a backend provides for EventStreams; the subscription logic is shared. */
export interface StreamStorage {
  /** Appends with the next id (see nextStreamId) and trims to the retention. */
  append(stream: string, payload: Uint8Array): Promise<string>;
  /**
   * The id of the newest event, or STREAM_START_ID for an empty stream. Calls are
   * ordered with `append` calls made after them on the same instance.
   */
  lastId(stream: string): Promise<string>;
  openReader(stream: string): StreamReader;
}

/** EventStreams, and the way to end every subscription when the Coordination closes. */
export interface ClosableEventStreams {
  events: EventStreams;
  /** Ends every subscription; later ones end at once. */
  close(): void;
}

/** EventStreams over a backend's storage: validation, start positions and gap detection. */
export function createEventStreams(storage: StreamStorage): ClosableEventStreams {
  const open = new Set<StreamReader>();
  let closed = false;
  const openReader = (stream: string): StreamReader | undefined => {
    if (closed) return undefined;
    const reader = storage.openReader(stream);
    open.add(reader);
    return reader;
  };
  const closeReader = (reader: StreamReader) => {
    open.delete(reader);
    reader.close();
  };
  const events: EventStreams = {
    async publish(stream, payload) {
      requireNonEmpty("stream", stream);
      return storage.append(stream, typeof payload === "string" ? new TextEncoder().encode(payload) : payload);
    },
    subscribe(stream, options) {
      requireNonEmpty("stream", stream);
      const after = options.after ?? "$";
      checkStreamPosition(after);
      // Resolve "$" now rather than at the first next(), so that an event published
      // right after subscribe() returns is delivered.
      const start = after === "$" ? storage.lastId(stream) : Promise.resolve(after);
      start.catch(() => {}); // rethrown by the iteration; avoids an unhandled rejection if never iterated
      return { [Symbol.asyncIterator]: () => iterate(stream, start, options) };
    },
  };

  async function* iterate(stream: string, start: Promise<string>, { signal }: SubscribeOptions): AsyncGenerator<StreamEvent> {
    if (signal.aborted) return;
    const reader = openReader(stream);
    if (!reader) return;
    const onAbort = () => closeReader(reader);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const after = await start;
      // After "0" the first retained event is expected, whatever its sequence;
      // after an id, sequences must continue without a hole.
      let cursor = after === "0" ? STREAM_START_ID : after;
      let expected = after === "0" ? undefined : parseStreamId(after)!.sequence + 1;
      while (!reader.closed) {
        for (const event of await reader.read(cursor)) {
          const { sequence } = parseStreamId(event.id)!;
          if (expected !== undefined && sequence !== expected) throw streamGapError(stream, cursor, event.id);
          expected = sequence + 1;
          cursor = event.id;
          yield event;
          if (reader.closed) return;
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      closeReader(reader);
    }
  }

  return {
    events,
    close() {
      closed = true;
      for (const reader of [...open]) closeReader(reader);
    },
  };
}
