import type { LogEntry, LogFilter, LogSource } from "./engine.js";

/** A LogSource fed line by line, keeping a bounded buffer per replica. */
export interface LogHub extends LogSource {
  append(entry: LogEntry): void;
  /** Marks a replica's buffer as finished: it is kept among the most recent finished ones only. */
  retire(replica: string): void;
}

function matches(filter: LogFilter, entry: LogEntry): boolean {
  return entry.app === filter.app && (!filter.processType || entry.processType === filter.processType) && (!filter.replica || entry.replica === filter.replica);
}

/**
 * Creates a log hub that keeps the last `linesPerReplica` lines of each live
 * replica and of the last `finishedReplicasKept` finished ones.
 */
export function createLogHub(options: { linesPerReplica: number; finishedReplicasKept: number }): LogHub {
  const buffers = new Map<string, LogEntry[]>();
  const finished: string[] = [];
  const listeners = new Set<{ filter: LogFilter; listener: (entry: LogEntry) => void }>();
  return {
    append(entry) {
      let buffer = buffers.get(entry.replica);
      if (buffer === undefined) {
        buffer = [];
        buffers.set(entry.replica, buffer);
      }
      buffer.push(entry);
      if (buffer.length > options.linesPerReplica) buffer.splice(0, buffer.length - options.linesPerReplica);
      for (const { filter, listener } of listeners) if (matches(filter, entry)) listener(entry);
    },
    retire(replica) {
      if (!buffers.has(replica) || finished.includes(replica)) return;
      finished.push(replica);
      while (finished.length > options.finishedReplicasKept) buffers.delete(finished.shift()!);
    },
    tail(filter, lines) {
      if (lines === 0) return [];
      const picked: LogEntry[] = [];
      for (const [replica, buffer] of buffers) {
        if (filter.replica && replica !== filter.replica) continue;
        for (const entry of buffer) if (matches(filter, entry)) picked.push(entry);
      }
      picked.sort((a, b) => a.time.getTime() - b.time.getTime());
      return picked.slice(-lines);
    },
    follow(filter, listener) {
      const subscription = { filter, listener };
      listeners.add(subscription);
      return () => listeners.delete(subscription);
    },
  };
}
