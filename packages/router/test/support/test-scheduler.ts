import { create } from "@bufbuild/protobuf";
import { servePartial, silentLogger, startServer } from "@berth/kit";
import type { RunningServer } from "@berth/kit";
import { SchedulerService, WatchEndpointsResponseSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { ProcessEndpointsSchema } from "@berth/proto/type/v1/network";
import type { ProcessEndpoints } from "@berth/proto/type/v1/network";
import { RoutingClass } from "@berth/proto/type/v1/process";

/**
 * A real gRPC server implementing only the scheduler's endpoint RPCs
 * (WatchEndpoints, AckEndpoints, ReportDrained), standing in for the
 * scheduler in the router's own package tests.
 */
export interface TestScheduler {
  readonly url: string;
  readonly token: string;
  /** Publishes a change of one web process's endpoints as a new generation; returns it. */
  setWebEndpoints(app: string, processType: string, endpoints: { replica: string; host: string; port: number }[], removed?: boolean): bigint;
  /** Resolves once `consumer` acknowledged `generation` (or a later one). */
  acknowledged(consumer: string, generation: bigint): Promise<void>;
  /** Replicas reported drained so far, in order. */
  readonly drained: string[];
  /** Resolves once `replica` was reported drained. */
  drainedReported(replica: string): Promise<void>;
  /** Breaks every open stream, as a scheduler restart would. */
  dropStreams(): void;
  /**
   * Restarts as a new epoch and breaks every stream. `knowingNothing`: the
   * new run has not published anything yet (an empty snapshot at the same
   * generation); otherwise it knows every process but the `forgotten` ones
   * ("app/processType", gone while it was down), at a newer generation.
   * Resolves once a consumer has reconnected and been sent the new snapshot.
   */
  restart(knowingNothing: boolean, forgotten?: string[]): Promise<void>;
  close(): Promise<void>;
}

interface Subscriber {
  queue: WatchEndpointsResponse[];
  wake: (() => void) | undefined;
  dropped: boolean;
}

/** Starts the stand-in scheduler on a free port. */
export async function startTestScheduler(token = "test-internal-token-0123456789"): Promise<TestScheduler> {
  const processes = new Map<string, ProcessEndpoints>();
  let generation = 0n;
  let epoch = "epoch-1";
  let snapshotsSent = 0;
  // What the snapshot holds: after a restart that knows nothing, none of `processes` until they change again.
  let published = processes;
  const subscribers = new Set<Subscriber>();
  const acks = new Map<string, bigint>();
  const drained: string[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      if (done()) return resolve();
      const check = () => {
        if (!done()) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
    });

  const server: RunningServer = await startServer({
    name: "test-scheduler",
    host: "127.0.0.1",
    port: 0,
    internalToken: token,
    logger: silentLogger,
    services: [
      servePartial(SchedulerService, {
        async *watchEndpoints(_request, context) {
          const subscriber: Subscriber = { queue: [], wake: undefined, dropped: false };
          subscribers.add(subscriber);
          try {
            const snapshot = create(WatchEndpointsResponseSchema, { generation, snapshot: true, processes: [...published.values()], epoch });
            snapshotsSent++;
            notify();
            yield snapshot;
            while (!context.signal.aborted && !subscriber.dropped) {
              const next = subscriber.queue.shift();
              if (next) {
                yield next;
                continue;
              }
              await new Promise<void>((resolve) => {
                subscriber.wake = resolve;
                context.signal.addEventListener("abort", () => resolve(), { once: true });
              });
              subscriber.wake = undefined;
            }
          } finally {
            subscribers.delete(subscriber);
          }
        },
        async ackEndpoints(request) {
          const previous = acks.get(request.consumer) ?? -1n;
          if (request.generation > previous) acks.set(request.consumer, request.generation);
          notify();
          return {};
        },
        async reportDrained(request) {
          drained.push(...request.replicas);
          notify();
          return {};
        },
      }),
    ],
  });

  const dropStreams = () => {
    for (const subscriber of subscribers) {
      subscriber.dropped = true;
      subscriber.wake?.();
    }
  };

  return {
    url: server.url,
    token,
    drained,
    setWebEndpoints(app, processType, endpoints, removed = false) {
      const process = create(ProcessEndpointsSchema, { team: "acme", app, processType, routingClass: RoutingClass.WEB, endpoints, removed });
      published = processes;
      if (removed) processes.delete(`${app}/${processType}`);
      else processes.set(`${app}/${processType}`, process);
      generation++;
      const message = create(WatchEndpointsResponseSchema, { generation, snapshot: false, processes: [process], epoch });
      for (const subscriber of subscribers) {
        subscriber.queue.push(message);
        subscriber.wake?.();
      }
      return generation;
    },
    acknowledged: (consumer, wanted) => until(() => (acks.get(consumer) ?? -1n) >= wanted),
    drainedReported: (replica) => until(() => drained.includes(replica)),
    dropStreams,
    restart(knowingNothing, forgotten = []) {
      epoch = `epoch-${Number(epoch.slice(6)) + 1}`;
      for (const key of forgotten) processes.delete(key);
      if (knowingNothing) published = new Map();
      else generation++;
      const sentBefore = snapshotsSent;
      dropStreams();
      return until(() => snapshotsSent > sentBefore);
    },
    close: () => server.close(0),
  };
}
