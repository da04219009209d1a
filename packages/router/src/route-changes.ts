import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { unavailable } from "@berth/kit";
import { AppRoutesSchema, RoutesVersionSchema, WatchRoutesResponseSchema } from "@berth/proto/router/v1/router";
import type { RoutesVersion, WatchRoutesResponse } from "@berth/proto/router/v1/router";
import { RouteSchema } from "@berth/proto/type/v1/network";
import type { Route } from "@berth/proto/type/v1/network";
import type { RouteTable } from "./route-table.js";
import type { DomainRow, RouteRow, RouterStore } from "./store/router-store.js";

/** Options of createRouteChanges. */
export interface RouteChangesOptions {
  store: Pick<RouterStore, "listRoutes" | "listDomains">;
  /** Swaps after every reconcile pass (which follows every change of the stored routes) and endpoint update. */
  routes: Pick<RouteTable, "onChange">;
  /** The URL a hostname is reached at. */
  urlFor(hostname: string): string;
  /** Subscribes to changes of what `urlFor` answers (a certificate served or dropped); returns the unsubscribe. */
  onUrlChange?: (listener: () => void) => () => void;
}

/**
 * The stored routes of every app as a stream of changes (WatchRoutes), with
 * versions that let writers tell their clients when a change is visible.
 */
export interface RouteChanges {
  /**
   * Reads the stored routes in a pass that starts after this call and
   * publishes what changed; resolves with the version that holds it.
   */
  refresh(): Promise<RoutesVersion>;
  /** A snapshot of every app's routes, then each change, until `signal` aborts. */
  watch(signal: AbortSignal): AsyncGenerator<WatchRoutesResponse>;
}

interface AppEntry {
  /** What the routes are, to tell a change from a repeat. */
  signature: string;
  routes: Route[];
}

interface Subscriber {
  /** Apps changed since the last message this subscriber was sent. */
  changed: Set<string>;
  failure: Error | undefined;
  wake: (() => void) | undefined;
}

function signatureOf(routes: readonly Route[]): string {
  return routes.map((route) => `${route.url} ${route.processType} ${route.customDomain} ${route.createdAt?.seconds}.${route.createdAt?.nanos}`).join("\n");
}

/**
 * Creates the route change feed: it re-reads the store after every route
 * table swap and on request, and publishes the apps whose routes differ.
 */
export function createRouteChanges(options: RouteChangesOptions): RouteChanges {
  const instance = randomUUID();
  let generation = 0n;
  let current = new Map<string, AppEntry>();
  const subscribers = new Set<Subscriber>();
  let running: Promise<void> | undefined;
  let pending: Promise<RoutesVersion> | undefined;

  const version = (): RoutesVersion => create(RoutesVersionSchema, { instance, generation });

  const toRoute = (row: RouteRow | DomainRow, customDomain: boolean): Route =>
    create(RouteSchema, {
      hostname: row.hostname,
      app: row.app,
      processType: row.processType,
      url: options.urlFor(row.hostname),
      customDomain,
      createdAt: timestampFromDate(row.createdAt),
    });

  async function pass(): Promise<void> {
    let routes: RouteRow[];
    let domains: DomainRow[];
    try {
      [routes, domains] = await Promise.all([options.store.listRoutes(), options.store.listDomains()]);
    } catch (error) {
      // A watcher that missed this change must not go on believing its view: it reconnects and takes a new snapshot.
      const failure = unavailable("the router could not read its routes", error);
      for (const subscriber of subscribers) {
        subscriber.failure = failure;
        subscriber.wake?.();
      }
      throw failure;
    }
    const next = new Map<string, AppEntry>();
    const apps = new Set([...routes.map((row) => row.app), ...domains.map((row) => row.app)]);
    for (const app of apps) {
      // The order ListRoutes answers in: platform routes, then custom domains, each by hostname.
      const own = routes.filter((row) => row.app === app);
      const custom = domains.filter((row) => row.app === app);
      const entryRoutes = [...own.map((row) => toRoute(row, false)), ...custom.map((row) => toRoute(row, true))];
      next.set(app, { signature: signatureOf(entryRoutes), routes: entryRoutes });
    }
    const changed: string[] = [];
    for (const [app, entry] of next) if (current.get(app)?.signature !== entry.signature) changed.push(app);
    for (const app of current.keys()) if (!next.has(app)) changed.push(app);
    current = next;
    if (changed.length === 0) return;
    generation++;
    for (const subscriber of subscribers) {
      for (const app of changed) subscriber.changed.add(app);
      subscriber.wake?.();
    }
  }

  function refresh(): Promise<RoutesVersion> {
    if (!running) {
      running = pass().finally(() => (running = undefined));
      return running.then(version);
    }
    // Calls during a pass share the next one: this pass may have read the store before their change.
    pending ??= running
      .catch(() => {})
      .then(() => {
        pending = undefined;
        return refresh();
      });
    return pending;
  }

  const readAgain = () => {
    // The failure reached the watchers; the next change or write reads again.
    refresh().catch(() => {});
  };
  options.routes.onChange(readAgain);
  options.onUrlChange?.(readAgain);

  const appRoutes = (app: string) => create(AppRoutesSchema, { app, routes: current.get(app)?.routes ?? [] });

  return {
    refresh,
    async *watch(signal) {
      await refresh();
      const subscriber: Subscriber = { changed: new Set(), failure: undefined, wake: undefined };
      subscribers.add(subscriber);
      const onAbort = () => subscriber.wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        yield create(WatchRoutesResponseSchema, { snapshot: true, apps: [...current.keys()].map(appRoutes), routesVersion: version() });
        while (!signal.aborted) {
          if (subscriber.failure) throw subscriber.failure;
          if (subscriber.changed.size === 0) {
            await new Promise<void>((resolve) => (subscriber.wake = resolve));
            subscriber.wake = undefined;
            continue;
          }
          const apps = [...subscriber.changed].map(appRoutes);
          subscriber.changed.clear();
          yield create(WatchRoutesResponseSchema, { snapshot: false, apps, routesVersion: version() });
        }
      } finally {
        subscribers.delete(subscriber);
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
