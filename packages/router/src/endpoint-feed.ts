import type { Client } from "@connectrpc/connect";
import { followStream } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { SchedulerService, WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import type { ProcessEndpointsUpdate } from "./route-table.js";

/** One message of the endpoint stream, in the router's terms. */
export interface EndpointGeneration {
  generation: bigint;
  snapshot: boolean;
  processes: ProcessEndpointsUpdate[];
  /** The scheduler's drain timeout; 0 from a scheduler that does not send it. */
  drainTimeoutMs: number;
}

/** Options of startEndpointFeed. */
export interface EndpointFeedOptions {
  scheduler: Pick<Client<typeof SchedulerService>, "watchEndpoints" | "ackEndpoints" | "reportDrained">;
  consumer: string;
  /** Applies a generation; it is acknowledged once this resolves. */
  apply(generation: EndpointGeneration): Promise<void>;
  logger: Logger;
  /** Reconnect delays: from `initialBackoffMs`, doubling up to `maxBackoffMs` (the kit's followStream). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Deadline of AckEndpoints and ReportDrained calls. */
  callTimeoutMs?: number;
}

/** The running consumer of the scheduler's endpoint stream. */
export interface EndpointFeed {
  /** Resolves once the first snapshot has been applied. */
  readonly ready: Promise<void>;
  /** Tells the scheduler these removed replicas have no connection left. */
  reportDrained(replicas: string[]): void;
  close(): Promise<void>;
}

/**
 * Follows WatchEndpoints: applies the snapshot and every change, acknowledges
 * each generation once the route table has it, and reconnects with backoff
 * when the stream breaks (the scheduler sends a fresh snapshot then).
 *
 * A snapshot from a restarted scheduler (a new epoch) that is not newer than
 * the generation already applied is merged instead of replacing the table:
 * a scheduler that has not yet published what it knows must not take every
 * route away.
 */
export function startEndpointFeed(options: EndpointFeedOptions): EndpointFeed {
  const controller = new AbortController();
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  let applied: { epoch: string; generation: bigint } | undefined;

  const loop = followStream<WatchEndpointsResponse>({
    name: "WatchEndpoints",
    open: (callOptions) => options.scheduler.watchEndpoints({ consumer: options.consumer }, callOptions),
    async onMessage(message) {
      const staleSnapshot = message.snapshot && applied !== undefined && applied.epoch !== message.epoch && message.generation <= applied.generation;
      if (staleSnapshot) {
        options.logger.warn("a restarted scheduler sent a snapshot no newer than the routes: keeping what it leaves out", {
          generation: message.generation,
          applied: applied?.generation,
        });
      }
      await options.apply({
        generation: message.generation,
        snapshot: message.snapshot && !staleSnapshot,
        drainTimeoutMs: message.drainTimeoutMs,
        processes: message.processes.map((process) => ({
          team: process.team,
          app: process.app,
          processType: process.processType,
          routingClass: process.routingClass,
          endpoints: process.endpoints.map((endpoint) => ({
            replica: endpoint.replica,
            host: endpoint.host,
            port: endpoint.port,
            replicaIndex: endpoint.replicaIndex,
            releaseVersion: endpoint.releaseVersion,
          })),
          removed: process.removed,
          replicas: process.replicas,
          rtcRouteToken: process.rtcRouteToken,
          canary: process.canary && { releaseVersion: process.canary.releaseVersion, percent: process.canary.percent },
        })),
      });
      applied = { epoch: message.epoch, generation: message.generation };
      if (message.snapshot) markReady();
      await options.scheduler.ackEndpoints(
        { consumer: options.consumer, generation: message.generation },
        { signal: controller.signal, timeoutMs: callTimeoutMs },
      );
    },
    signal: controller.signal,
    logger: options.logger,
    initialBackoffMs: options.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs,
  });

  return {
    ready,
    reportDrained(replicas) {
      if (replicas.length === 0 || controller.signal.aborted) return;
      options.scheduler.reportDrained({ consumer: options.consumer, replicas }, { timeoutMs: callTimeoutMs }).catch((error: unknown) => {
        // The scheduler's own drain timeout ends the drain when this is lost.
        options.logger.warn("ReportDrained failed", { replicas, error });
      });
    },
    async close() {
      controller.abort();
      await loop;
    },
  };
}
