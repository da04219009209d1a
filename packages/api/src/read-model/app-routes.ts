import type { RoutesVersion, WatchRoutesResponse } from "@berth/proto/router/v1/router";
import type { Route } from "@berth/proto/type/v1/network";

/**
 * Every app's routes as the router's WatchRoutes stream tells them, so that
 * the formation view costs no call to the router. It answers only while the
 * stream is live, and for an app this API just changed only once the stream
 * has shown that change.
 */
export interface AppRoutes {
  /** The routes of `app`, or undefined when they must be asked of the router. */
  routesOf(app: string): readonly Route[] | undefined;
  /** A new attempt to open the stream begins. */
  opening(): void;
  /** Applies one WatchRoutes message. */
  apply(message: WatchRoutesResponse): void;
  /** The stream is down: nothing is answered until the next snapshot. */
  down(): void;
  /** This API changed `app`'s routes; the router answered with `version`, the first that shows the change. */
  wrote(app: string, version: RoutesVersion | undefined): void;
  /** Calls `listener` with the apps whose routes a message changed (every app on a snapshot); the returned function stops it. */
  onChange(listener: (apps: ReadonlySet<string> | "all") => void): () => void;
}

interface Awaited {
  /** Opening attempt during which the write was answered: a later attempt's snapshot shows it. */
  attempt: number;
  /** The router instance that answered, "" if it gave no version (then only a later snapshot shows the write). */
  instance: string;
  generation: bigint;
}

/** Creates an empty view, answering nothing until a snapshot arrives. */
export function createAppRoutes(): AppRoutes {
  let live = false;
  let attempt = 0;
  let instance = "";
  let generation = 0n;
  const routes = new Map<string, readonly Route[]>();
  const awaited = new Map<string, Awaited>();
  const listeners = new Set<(apps: ReadonlySet<string> | "all") => void>();

  const shown = (wanted: Awaited) => wanted.attempt < attempt || (wanted.instance !== "" && wanted.instance === instance && wanted.generation <= generation);

  return {
    routesOf(app) {
      if (!live) return undefined;
      const wanted = awaited.get(app);
      if (wanted) {
        if (!shown(wanted)) return undefined;
        awaited.delete(app);
      }
      return routes.get(app) ?? [];
    },
    opening() {
      attempt++;
    },
    apply(message) {
      if (message.snapshot) {
        routes.clear();
        live = true;
      }
      instance = message.routesVersion?.instance ?? "";
      generation = message.routesVersion?.generation ?? 0n;
      for (const { app, routes: appRoutes } of message.apps) {
        if (appRoutes.length === 0) routes.delete(app);
        else routes.set(app, appRoutes);
      }
      for (const [app, wanted] of awaited) if (shown(wanted)) awaited.delete(app);
      const changed = message.snapshot ? "all" : new Set(message.apps.map(({ app }) => app));
      for (const listener of listeners) listener(changed);
    },
    down() {
      live = false;
      routes.clear();
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    wrote(app, version) {
      const wanted: Awaited = { attempt, instance: version?.instance ?? "", generation: version?.generation ?? 0n };
      if (live && shown(wanted)) return;
      // Of two concurrent writes to one router, the later version shows both.
      const earlier = awaited.get(app);
      if (earlier && earlier.instance === wanted.instance && earlier.generation > wanted.generation) return;
      awaited.set(app, wanted);
    },
  };
}
