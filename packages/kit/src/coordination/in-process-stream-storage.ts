import type { StreamEvent } from "./coordination.js";
import { STREAM_READ_BATCH, type StreamReader, type StreamStorage } from "./event-streams.js";
import { STREAM_START_ID, compareStreamIds, formatStreamId, nextStreamId, parseStreamId, type StreamId } from "./stream-ids.js";

interface Stream {
  /** Oldest first; at most maxLength of them. */
  events: { id: StreamId; event: StreamEvent }[];
  last: StreamId;
  /** Readers waiting for the next append. */
  waiting: Set<() => void>;
}

/** Bounded in-memory streams with the same ids, trimming and wake-ups as the Redis ones. */
export function createInProcessStreamStorage(maxLength: number): StreamStorage {
  const streams = new Map<string, Stream>();
  const streamOf = (name: string): Stream => {
    let stream = streams.get(name);
    if (!stream) {
      stream = { events: [], last: parseStreamId(STREAM_START_ID)!, waiting: new Set() };
      streams.set(name, stream);
    }
    return stream;
  };
  const eventsAfter = (stream: Stream, after: StreamId): StreamEvent[] => {
    // Binary search: events are sorted by id.
    let low = 0;
    let high = stream.events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareStreamIds(stream.events[middle]!.id, after) <= 0) low = middle + 1;
      else high = middle;
    }
    // Copies, so that one subscriber changing its bytes cannot change another's.
    return stream.events.slice(low, low + STREAM_READ_BATCH).map(({ event }) => ({ id: event.id, payload: new Uint8Array(event.payload) }));
  };
  return {
    async append(name, payload) {
      const stream = streamOf(name);
      stream.last = nextStreamId(stream.last, Date.now());
      const id = formatStreamId(stream.last);
      stream.events.push({ id: stream.last, event: { id, payload: new Uint8Array(payload) } });
      if (stream.events.length > maxLength) stream.events.shift();
      const waiting = [...stream.waiting];
      stream.waiting.clear();
      for (const wake of waiting) wake();
      return id;
    },
    async lastId(name) {
      return formatStreamId(streamOf(name).last);
    },
    openReader(name) {
      const stream = streamOf(name);
      let closed = false;
      let wake: (() => void) | undefined;
      const reader: StreamReader = {
        get closed() {
          return closed;
        },
        async read(after) {
          const position = parseStreamId(after)!;
          while (!closed) {
            const events = eventsAfter(stream, position);
            if (events.length > 0) return events;
            await new Promise<void>((resolve) => {
              wake = resolve;
              stream.waiting.add(resolve);
            });
          }
          return [];
        },
        close() {
          if (closed) return;
          closed = true;
          if (wake) {
            stream.waiting.delete(wake);
            wake();
          }
        },
      };
      return reader;
    },
  };
}
