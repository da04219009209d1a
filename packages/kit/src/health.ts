import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus, HealthCheckResponseSchema } from "@berth/proto/grpc/health/v1/health";
import { notFound } from "./errors.js";

/** Serving status per service name ("" is the whole server), watched by grpc.health.v1. */
export interface HealthRegistry {
  /** Marks a service (or "" for the server) as serving or not. */
  set(service: string, serving: boolean): void;
  /** The current status, or undefined for an unknown service. */
  get(service: string): ServingStatus | undefined;
}

interface Watcher {
  service: string;
  notify(): void;
}

/** Creates the health registry and registers grpc.health.v1.Health (Check, List, Watch) on the router. */
export function registerHealth(router: ConnectRouter, serviceNames: string[]): HealthRegistry {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.NOT_SERVING]]);
  for (const name of serviceNames) statuses.set(name, ServingStatus.NOT_SERVING);
  const watchers = new Set<Watcher>();
  const registry: HealthRegistry = {
    set(service, serving) {
      statuses.set(service, serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
      for (const watcher of watchers) if (watcher.service === service) watcher.notify();
    },
    get: (service) => statuses.get(service),
  };
  router.service(Health, {
    check(request) {
      const status = statuses.get(request.service);
      if (status === undefined) throw notFound(`unknown service ${request.service}`);
      return { status };
    },
    list() {
      const result: Record<string, ReturnType<typeof create<typeof HealthCheckResponseSchema>>> = {};
      for (const [name, status] of statuses) result[name] = create(HealthCheckResponseSchema, { status });
      return { statuses: result };
    },
    async *watch(request, context) {
      let wake: () => void = () => {};
      const watcher: Watcher = { service: request.service, notify: () => wake() };
      watchers.add(watcher);
      try {
        let last: ServingStatus | undefined;
        while (!context.signal.aborted) {
          const status = statuses.get(request.service) ?? ServingStatus.SERVICE_UNKNOWN;
          if (status !== last) {
            last = status;
            yield { status };
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            context.signal.addEventListener("abort", () => resolve(), { once: true });
          });
        }
      } finally {
        watchers.delete(watcher);
      }
    },
  });
  return registry;
}
