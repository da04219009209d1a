import { watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { open, truncate } from "node:fs/promises";

/** Follows a growing file line by line. */
export interface FileTail {
  /** Reads what is new now (also called on every change). */
  poll(): Promise<void>;
  /** Reads what is left and stops following. */
  close(): Promise<void>;
}

/**
 * Follows `path` from `startOffset`, calling `onLine` for each complete line.
 * Reacts to file changes (inotify) and also polls every `pollMs` in case an
 * event was missed. Once the file has grown past `maxBytes` it is truncated:
 * the writer appends (O_APPEND), so it carries on at the new end; lines
 * written between the last read and the truncation are lost, a trade for
 * bounded disk use.
 */
export function tailFile(path: string, onLine: (line: string) => void, options: { pollMs: number; maxBytes: number; startOffset?: number }): FileTail {
  let offset = options.startOffset ?? 0;
  let partial = "";
  let closed = false;
  let reading: Promise<void> = Promise.resolve();
  let watcher: FSWatcher | undefined;
  const startWatching = () => {
    if (watcher !== undefined || closed) return;
    try {
      watcher = watch(path, () => void tail.poll());
      watcher.on("error", () => {
        watcher?.close();
        watcher = undefined;
      });
    } catch {
      // The file does not exist yet; the next poll tries again.
    }
  };
  startWatching();
  const timer = setInterval(() => {
    startWatching();
    void tail.poll();
  }, options.pollMs);

  async function readNew(): Promise<void> {
    let handle;
    try {
      handle = await open(path, "r");
    } catch {
      return;
    }
    try {
      const { size } = await handle.stat();
      if (size < offset) offset = 0;
      while (offset < size) {
        const chunk = Buffer.alloc(Math.min(size - offset, 64 * 1024));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const lines = (partial + chunk.subarray(0, bytesRead).toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) onLine(line);
      }
    } finally {
      await handle.close();
    }
    if (offset > options.maxBytes) {
      await truncate(path, 0).catch(() => undefined);
      offset = 0;
    }
  }

  const tail: FileTail = {
    poll() {
      if (closed) return reading;
      reading = reading.then(readNew, readNew);
      return reading;
    },
    async close() {
      await tail.poll();
      closed = true;
      clearInterval(timer);
      watcher?.close();
      watcher = undefined;
      await reading;
      if (partial !== "") onLine(partial);
      partial = "";
    },
  };
  void tail.poll();
  return tail;
}
