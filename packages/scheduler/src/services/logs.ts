import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { invalidArgument } from "@berth/kit";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { LogLineSchema } from "@berth/proto/type/v1/process";
import type { LogEntry } from "../engine/engine.js";
import { requireApp } from "./app-reads.js";
import { MAX_TAIL_LINES, requireFields } from "./request-checks.js";
import type { SchedulerServiceDeps } from "./service-deps.js";

type LogHandlers = Pick<ServiceImpl<typeof SchedulerService>, "streamLogs">;

function logLine(entry: LogEntry) {
  return {
    line: create(LogLineSchema, {
      time: timestampFromDate(entry.time),
      app: entry.app,
      processType: entry.processType,
      replica: entry.replica,
      releaseVersion: entry.releaseVersion,
      stream: entry.stream,
      text: entry.text,
    }),
  };
}

function entryKey(entry: LogEntry): string {
  return `${entry.replica}\n${entry.time.getTime()}\n${entry.text}`;
}

/** The handler of logs: the last lines of an app's replicas, then new ones as they come. */
export function createLogHandlers(deps: SchedulerServiceDeps): LogHandlers {
  const { db } = deps;
  const { logs } = deps.engine;
  return {
    async *streamLogs(request, ctx) {
      requireFields({ optionalIds: { process_type: request.processType, replica: request.replica } });
      const app = await requireApp(db, request.app);
      if (request.tailLines > MAX_TAIL_LINES) throw invalidArgument("tail_lines", `must be at most ${MAX_TAIL_LINES}`);
      const filter = { app: app.name, processType: request.processType, replica: request.replica };
      const pending: LogEntry[] = [];
      let wake: (() => void) | undefined;
      const stop = request.follow
        ? logs.follow(filter, (entry) => {
            pending.push(entry);
            wake?.();
          })
        : () => undefined;
      try {
        const tail = await logs.tail(filter, request.tailLines);
        // A line printed while the tail was read can reach the follow as well (as another object, from a cluster).
        const sent = new Set(tail.map(entryKey));
        for (const entry of tail) yield logLine(entry);
        if (!request.follow) return;
        const onAbort = () => wake?.();
        ctx.signal.addEventListener("abort", onAbort);
        try {
          while (!ctx.signal.aborted) {
            const entry = pending.shift();
            if (entry === undefined) {
              await new Promise<void>((resolve) => (wake = resolve));
              wake = undefined;
            } else if (!sent.has(entryKey(entry))) {
              yield logLine(entry);
            }
          }
        } finally {
          ctx.signal.removeEventListener("abort", onAbort);
        }
      } finally {
        stop();
      }
    },
  };
}
