import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { Database, Logger } from "@berth/kit";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { WatchEndpointsResponseSchema } from "@berth/proto/scheduler/v1/scheduler";
import { EndpointSchema, ProcessEndpointsSchema } from "@berth/proto/type/v1/network";
import type { Endpoint, ProcessEndpoints } from "@berth/proto/type/v1/network";
import type { RoutingClass } from "@berth/proto/type/v1/process";
import {
  currentEndpointGeneration,
  deleteEndpointConsumer,
  listEndpointConsumers,
  nextEndpointGeneration,
  saveEndpointConsumer,
} from "./store/endpoint-consumers.js";

/** The healthy endpoints of one process type, as the controller computed them. */
export interface ProcessEndpointSet {
  processType: string;
  routingClass: RoutingClass;
  endpoints: Pick<Endpoint, "replica" | "host" | "port" | "zone" | "releaseVersion" | "replicaIndex">[];
  /** The replica count the type is scaled to. */
  replicas: number;
  /** `*-rtc` only: the route token of its per-replica hostnames, empty while unknown. */
  rtcRouteToken: string;
  /** A web type during a canary: the canary release and its share of requests (percent). */
  canary?: { releaseVersion: number; percent: number };
}

/** Whether a wait is over, or when to look again. */
export type GateStatus = { done: true } | { done: false; recheckAt: number };

/** The endpoint stream: what is published, who consumes it, and what they acknowledged. */
export interface EndpointHub {
  /** Publishes an app's sets (every routable type it has); returns the generation that holds them. */
  publish(app: string, team: string, sets: ProcessEndpointSet[]): Promise<number>;
  /** The app is gone: its types are published as removed. */
  removeApp(app: string): Promise<number>;
  /** A snapshot, then every change, until `signal` aborts. */
  watch(consumer: string, signal: AbortSignal): AsyncIterable<WatchEndpointsResponse>;
  ack(consumer: string, generation: number): Promise<void>;
  reportDrained(consumer: string, replicas: string[]): void;
  /** Whether every live consumer has acknowledged `generation` (a retirement waiting since `sinceMs`). */
  ackStatus(generation: number, sinceMs: number): Promise<GateStatus>;
  /**
   * Whether every connected consumer reported `replica` drained, or the drain
   * timeout since `sinceMs` passed. A replica this hub never published has no
   * connections to drain (a router reports drains only of the upstreams it had).
   */
  drainStatus(replica: string, sinceMs: number): GateStatus;
  /** Drops what is known about a replica that stopped. */
  forgetReplica(replica: string): void;
  readonly generation: number;
  /** Called whenever an acknowledgement or a drain report may let a retirement move on. */
  onProgress(listener: () => void): () => void;
  close(): void;
}

interface ConsumerState {
  connections: number;
  acked: number;
  /** When its last stream ended (or the scheduler started, for consumers known from before). */
  disconnectedAt: number;
  drained: Set<string>;
}

interface Subscriber {
  push(message: WatchEndpointsResponse): void;
}

function sameSet(a: ProcessEndpoints | undefined, b: ProcessEndpoints): boolean {
  if (a === undefined || a.routingClass !== b.routingClass || a.endpoints.length !== b.endpoints.length) return false;
  if (a.replicas !== b.replicas || a.rtcRouteToken !== b.rtcRouteToken) return false;
  if (a.canary?.releaseVersion !== b.canary?.releaseVersion || a.canary?.percent !== b.canary?.percent) return false;
  return a.endpoints.every((endpoint, index) => {
    const other = b.endpoints[index]!;
    return (
      endpoint.replica === other.replica &&
      endpoint.host === other.host &&
      endpoint.port === other.port &&
      endpoint.zone === other.zone &&
      endpoint.replicaIndex === other.replicaIndex
    );
  });
}

/**
 * Creates the endpoint hub. The generation and the consumers are kept in
 * the database, so that after a restart the scheduler still waits (up to the
 * consumer timeout) for consumers that were connected before.
 */
export async function createEndpointHub(options: {
  db: Database;
  logger: Logger;
  consumerTimeoutMs: number;
  ackTimeoutMs: number;
  drainTimeoutMs: number;
}): Promise<EndpointHub> {
  const { db, logger } = options;
  let generation = await currentEndpointGeneration(db);
  // Tells consumers this run apart from the one before a restart (see WatchEndpointsResponse.epoch).
  const epoch = randomUUID();
  const sets = new Map<string, ProcessEndpoints>();
  const consumers = new Map<string, ConsumerState>();
  const subscribers = new Set<Subscriber>();
  const listeners = new Set<() => void>();
  // Every replica published as an endpoint during this run: the only ones a router may hold connections to.
  const routed = new Set<string>();
  const startedAt = Date.now();
  for (const known of await listEndpointConsumers(db)) {
    consumers.set(known.name, { connections: 0, acked: known.ackedGeneration, disconnectedAt: startedAt, drained: new Set() });
  }
  let serial: Promise<unknown> = Promise.resolve();
  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = serial.then(fn, fn);
    serial = run.catch(() => undefined);
    return run;
  };
  const progress = () => {
    for (const listener of listeners) listener();
  };

  async function apply(changed: ProcessEndpoints[], removedKeys: string[]): Promise<number> {
    if (changed.length === 0) return generation;
    const next = await nextEndpointGeneration(db);
    for (const set of changed) {
      sets.set(`${set.app}/${set.processType}`, set);
      for (const endpoint of set.endpoints) routed.add(endpoint.replica);
    }
    for (const key of removedKeys) sets.delete(key);
    generation = next;
    const message = create(WatchEndpointsResponseSchema, {
      generation: BigInt(next),
      snapshot: false,
      processes: changed,
      epoch,
      drainTimeoutMs: options.drainTimeoutMs,
    });
    for (const subscriber of subscribers) subscriber.push(message);
    return next;
  }

  function consumer(name: string): ConsumerState {
    let state = consumers.get(name);
    if (state === undefined) {
      state = { connections: 0, acked: 0, disconnectedAt: Date.now(), drained: new Set() };
      consumers.set(name, state);
    }
    return state;
  }

  const closed = new AbortController();

  function publish(app: string, team: string, published: ProcessEndpointSet[]): Promise<number> {
    return serialize(async () => {
      const changed: ProcessEndpoints[] = [];
      const keys = new Set<string>();
      for (const set of published) {
        const key = `${app}/${set.processType}`;
        keys.add(key);
        const next = create(ProcessEndpointsSchema, {
          team,
          app,
          processType: set.processType,
          routingClass: set.routingClass,
          replicas: set.replicas,
          rtcRouteToken: set.rtcRouteToken,
          canary: set.canary,
          endpoints: [...set.endpoints].sort((a, b) => a.replica.localeCompare(b.replica)).map((endpoint) => create(EndpointSchema, endpoint)),
        });
        if (!sameSet(sets.get(key), next)) changed.push(next);
      }
      const removedKeys: string[] = [];
      for (const [key, set] of sets) {
        if (set.app === app && !keys.has(key)) {
          removedKeys.push(key);
          changed.push(create(ProcessEndpointsSchema, { ...set, endpoints: [], removed: true }));
        }
      }
      return apply(changed, removedKeys);
    });
  }

  return {
    get generation() {
      return generation;
    },

    publish,

    removeApp(app) {
      return publish(app, "", []);
    },

    watch(name, signal) {
      const queue: WatchEndpointsResponse[] = [
        create(WatchEndpointsResponseSchema, {
          generation: BigInt(generation),
          snapshot: true,
          processes: [...sets.values()],
          epoch,
          drainTimeoutMs: options.drainTimeoutMs,
        }),
      ];
      let wake: (() => void) | undefined;
      const subscriber: Subscriber = {
        push(message) {
          queue.push(message);
          wake?.();
        },
      };
      const state = consumer(name);
      state.connections += 1;
      subscribers.add(subscriber);
      void saveEndpointConsumer(db, name, 0).catch((error: unknown) => logger.warn("could not record endpoint consumer", { consumer: name, error }));
      logger.info("endpoint consumer connected", { consumer: name, generation });
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      closed.signal.addEventListener("abort", onAbort);
      return (async function* () {
        try {
          while (!signal.aborted && !closed.signal.aborted) {
            const message = queue.shift();
            if (message !== undefined) {
              yield message;
              continue;
            }
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
          }
        } finally {
          signal.removeEventListener("abort", onAbort);
          closed.signal.removeEventListener("abort", onAbort);
          subscribers.delete(subscriber);
          state.connections -= 1;
          if (state.connections === 0) state.disconnectedAt = Date.now();
          logger.info("endpoint consumer disconnected", { consumer: name });
          progress();
        }
      })();
    },

    async ack(name, acked) {
      const state = consumer(name);
      if (acked > generation) acked = generation;
      if (acked <= state.acked) return;
      state.acked = acked;
      await saveEndpointConsumer(db, name, acked);
      progress();
    },

    reportDrained(name, replicas) {
      const state = consumer(name);
      for (const replica of replicas) state.drained.add(replica);
      progress();
    },

    async ackStatus(wanted, sinceMs) {
      const now = Date.now();
      let recheckAt = Infinity;
      for (const [name, state] of consumers) {
        if (state.acked >= wanted) continue;
        if (state.connections === 0) {
          const timeoutAt = state.disconnectedAt + options.consumerTimeoutMs;
          if (now >= timeoutAt) {
            logger.warn("endpoint consumer gone: no longer waited for", { consumer: name });
            consumers.delete(name);
            await deleteEndpointConsumer(db, name);
            continue;
          }
          recheckAt = Math.min(recheckAt, timeoutAt);
          continue;
        }
        const ackDeadline = sinceMs + options.ackTimeoutMs;
        if (now >= ackDeadline) {
          logger.warn("endpoint consumer did not acknowledge in time: passed over", { consumer: name, generation: wanted, acked: state.acked });
          continue;
        }
        recheckAt = Math.min(recheckAt, ackDeadline);
      }
      return recheckAt === Infinity ? { done: true } : { done: false, recheckAt };
    },

    drainStatus(replica, sinceMs) {
      const timeoutAt = sinceMs + options.drainTimeoutMs;
      if (Date.now() >= timeoutAt || !routed.has(replica)) return { done: true };
      for (const state of consumers.values()) {
        if (state.connections > 0 && !state.drained.has(replica)) return { done: false, recheckAt: timeoutAt };
      }
      return { done: true };
    },

    forgetReplica(replica) {
      for (const state of consumers.values()) state.drained.delete(replica);
      routed.delete(replica);
    },

    onProgress(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    close() {
      listeners.clear();
      closed.abort();
    },
  };
}
