import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { notFound, servePartial, silentLogger, startServer } from "@berth/kit";
import { routingClassOf } from "@berth/kit";
import { AppProcessesSchema, SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import type { AppProcesses } from "@berth/proto/scheduler/v1/scheduler";

/** The internal credential the test services share. */
export const TEST_TOKEN = "netpol-test-internal-token-0123456789";

/** An app as a test declares it: team and process types (`web`, `grpc-tcp`, `worker`...). */
export interface TestApp {
  team: string;
  processes: string[];
  createdAtMs?: number;
}

/**
 * A real gRPC server implementing the scheduler's WatchApps and GetApp, the
 * two RPCs netpol calls, standing in for the scheduler in netpol's own tests
 * (the whole-platform test uses the real one).
 */
export interface TestScheduler {
  readonly url: string;
  /** Creates or changes an app and streams the change. */
  setApp(name: string, app: TestApp): void;
  /** Deletes an app and streams the deletion. */
  deleteApp(name: string): void;
  /** Breaks every open stream, as a scheduler restart would. */
  dropStreams(): void;
  close(): Promise<void>;
}

/** Starts the stand-in on a free port; `quietly` apps exist for GetApp but are not announced on the stream until set again. */
export async function startTestScheduler(initial: Record<string, TestApp> = {}): Promise<TestScheduler> {
  const apps = new Map<string, AppProcesses>();
  const subscribers = new Set<{ queue: AppProcesses[]; wake?: () => void; dropped: boolean }>();
  const message = (name: string, app: TestApp) =>
    create(AppProcessesSchema, {
      app: { name, team: app.team, createdAt: timestampFromMs(app.createdAtMs ?? 1_000) },
      processes: app.processes.map((processType, index) => ({ processType, routingClass: routingClassOf(processType), internalPort: 5000 + index })),
    });
  for (const [name, app] of Object.entries(initial)) apps.set(name, message(name, app));
  const publish = (entry: AppProcesses) => {
    for (const subscriber of subscribers) {
      subscriber.queue.push(entry);
      subscriber.wake?.();
    }
  };
  const server = await startServer({
    name: "test-scheduler",
    host: "127.0.0.1",
    port: 0,
    internalToken: TEST_TOKEN,
    logger: silentLogger,
    services: [
      servePartial(SchedulerService, {
        async getApp(request) {
          const entry = apps.get(request.name);
          if (!entry) throw notFound(`app "${request.name}" not found`);
          return { app: entry.app };
        },
        async *watchApps(_request, ctx) {
          const subscriber: { queue: AppProcesses[]; wake?: () => void; dropped: boolean } = { queue: [], dropped: false };
          subscribers.add(subscriber);
          try {
            yield { snapshot: true, apps: [...apps.values()] };
            while (!ctx.signal.aborted && !subscriber.dropped) {
              const next = subscriber.queue.shift();
              if (next) {
                yield { snapshot: false, apps: [next] };
                continue;
              }
              await new Promise<void>((resolve) => {
                subscriber.wake = resolve;
                ctx.signal.addEventListener("abort", () => resolve(), { once: true });
              });
            }
          } finally {
            subscribers.delete(subscriber);
          }
        },
      }),
    ],
  });
  return {
    url: server.url,
    setApp(name, app) {
      const entry = message(name, app);
      apps.set(name, entry);
      publish(entry);
    },
    deleteApp(name) {
      apps.delete(name);
      publish(create(AppProcessesSchema, { app: { name }, deleted: true }));
    },
    dropStreams() {
      for (const subscriber of subscribers) {
        subscriber.dropped = true;
        subscriber.wake?.();
      }
    },
    close: () => server.close(0),
  };
}
