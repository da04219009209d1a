import test from "ava";
import type { ExecutionContext } from "ava";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "@connectrpc/connect";
import { createInternalClient, silentLogger } from "@berth/kit";
import { RouterService } from "@berth/proto/router/v1/router";
import type { RoutesVersion, WatchRoutesResponse } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import type { Route } from "@berth/proto/type/v1/network";
import { readRouterConfig } from "../src/config.js";
import { startRouter } from "../src/start-router.js";
import { openTestStore } from "./support/store.js";
import { startTestScheduler } from "./support/test-scheduler.js";
import { startUpstream } from "./support/upstream.js";

async function startWatchedRouter(t: ExecutionContext) {
  const scheduler = await startTestScheduler();
  const store = await openTestStore();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-router-watch-"));
  const router = await startRouter(
    readRouterConfig({
      BERTH_DATA_DIR: dataDir,
      BERTH_INTERNAL_TOKEN: scheduler.token,
      BERTH_SCHEDULER_URL: scheduler.url,
      BERTH_ROUTER_PORT: "0",
      BERTH_ROUTER_HTTP_PORT: "0",
      BERTH_ROUTER_TLS: "off",
      BERTH_ROUTER_CONSUMER: "router-watch-test",
    }),
    { logger: silentLogger, database: store.db, scheduler: createInternalClient(SchedulerService, { baseUrl: scheduler.url, token: scheduler.token }) },
  );
  let closing: Promise<void> | undefined;
  const closeRouter = () => (closing ??= router.close());
  t.teardown(async () => {
    await closeRouter();
    await scheduler.close();
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  await router.ready;
  const upstream = await startUpstream("web-1");
  t.teardown(() => upstream.close());
  const client = createInternalClient(RouterService, { baseUrl: router.url, token: scheduler.token });
  /** Gives `app`'s web process a healthy replica, so that the router stores its platform route. */
  const serveApp = (app: string) => scheduler.acknowledged("router-watch-test", scheduler.setWebEndpoints(app, "web", [upstream.endpoint()]));
  return { client, serveApp, closeRouter };
}

/** A WatchRoutes client's view: every app's routes as the stream last said, and the version it reached. */
function watchRoutes(t: ExecutionContext, client: Client<typeof RouterService>) {
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const view = new Map<string, Route[]>();
  const messages: WatchRoutesResponse[] = [];
  let version: RoutesVersion | undefined;
  let ended: unknown;
  const waiters = new Set<() => void>();
  void (async () => {
    try {
      for await (const message of client.watchRoutes({}, { signal: controller.signal, timeoutMs: 0 })) {
        messages.push(message);
        if (message.snapshot) view.clear();
        for (const { app, routes } of message.apps) {
          if (routes.length === 0) view.delete(app);
          else view.set(app, routes);
        }
        version = message.routesVersion;
        for (const wake of waiters) wake();
      }
      ended = "ended";
    } catch (error) {
      ended = error;
    }
    for (const wake of waiters) wake();
  })();
  const until = (done: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (done()) {
          waiters.delete(check);
          resolve();
        } else if (ended !== undefined) {
          waiters.delete(check);
          reject(new Error(`the stream ended first: ${String(ended)}`));
        }
      };
      waiters.add(check);
      check();
    });
  return {
    view,
    messages,
    get ended() {
      return ended;
    },
    until,
    /** Resolves once the stream has brought the view up to `wanted`, a version a write answered with. */
    reached: (wanted: RoutesVersion | undefined) =>
      until(() => version !== undefined && wanted !== undefined && version.instance === wanted.instance && version.generation >= wanted.generation),
  };
}

const hostnames = (routes: Route[] | undefined) => (routes ?? []).map((route) => [route.hostname, route.customDomain]);

test("WatchRoutes sends every app's routes, then each changed app whole; writes answer with the version that shows them", async (t) => {
  const { client, serveApp } = await startWatchedRouter(t);
  await serveApp("shop");
  const watch = watchRoutes(t, client);
  await watch.until(() => watch.messages.length > 0);
  t.true(watch.messages[0]!.snapshot);
  t.deepEqual(hostnames(watch.view.get("shop")), [["shop.berth.localhost", false]], "the snapshot holds the stored platform route");

  const added = await client.addDomain({ app: "shop", processType: "web", hostname: "shop.example.com" });
  await watch.reached(added.routesVersion);
  t.deepEqual(hostnames(watch.view.get("shop")), [
    ["shop.berth.localhost", false],
    ["shop.example.com", true],
  ]);
  const domain = watch.view.get("shop")![1]!;
  const listed = (await client.listRoutes({ app: "shop" })).routes.find((route) => route.hostname === "shop.example.com")!;
  t.like(domain, { app: "shop", processType: "web", url: listed.url, customDomain: true, healthyEndpoints: 0, createdAt: listed.createdAt });
  t.is(domain.certificate, undefined, "certificate state is ListRoutes' business");

  await serveApp("blog");
  await watch.until(() => watch.view.has("blog"));
  t.false(watch.messages.at(-1)!.snapshot);
  t.deepEqual(
    watch.messages.at(-1)!.apps.map((app) => app.app),
    ["blog"],
    "only the app that changed is sent",
  );

  const removed = await client.removeDomain({ app: "shop", hostname: "shop.example.com" });
  await watch.reached(removed.routesVersion);
  t.deepEqual(hostnames(watch.view.get("shop")), [["shop.berth.localhost", false]]);

  const deleted = await client.deleteAppRoutes({ app: "shop" });
  await watch.reached(deleted.routesVersion);
  t.false(watch.view.has("shop"));
  t.deepEqual(watch.messages.at(-1)!.apps.find((app) => app.app === "shop")?.routes, [], "an app left without routes is sent with none");

  const late = watchRoutes(t, client);
  await late.until(() => late.messages.length > 0);
  t.deepEqual([...late.view.keys()], ["blog"], "a new watcher's snapshot holds only apps with routes");
  t.is(late.messages[0]!.routesVersion?.instance, deleted.routesVersion?.instance);
});

test("a write answers with a newer version that the stream then reaches; another router process has another instance", async (t) => {
  const first = await startWatchedRouter(t);
  const second = await startWatchedRouter(t);
  await first.serveApp("shop");
  const watch = watchRoutes(t, first.client);
  await watch.until(() => watch.messages.length > 0);
  const snapshotVersion = watch.messages[0]!.routesVersion!;
  const added = await first.client.addDomain({ app: "shop", processType: "web", hostname: "a.example.com" });
  t.true(added.routesVersion!.generation > snapshotVersion.generation, "the write made a newer version");
  await watch.reached(added.routesVersion);
  t.true(hostnames(watch.view.get("shop")).some(([hostname]) => hostname === "a.example.com"));

  await second.serveApp("shop");
  const other = await second.client.addDomain({ app: "shop", processType: "web", hostname: "b.example.com" });
  t.not(other.routesVersion!.instance, added.routesVersion!.instance);
});

test("closing the router ends its route streams, so that watchers reconnect elsewhere", async (t) => {
  const { client, closeRouter } = await startWatchedRouter(t);
  const watch = watchRoutes(t, client);
  await watch.until(() => watch.messages.length > 0);
  t.deepEqual([...watch.view.keys()], []);
  await closeRouter();
  await watch.until(() => watch.ended !== undefined).catch(() => {});
  t.not(watch.ended, undefined);
});
