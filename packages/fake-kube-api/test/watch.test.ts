import test from "ava";
import { CoreV1Api, makeInformer, Watch, type V1ConfigMap } from "@kubernetes/client-node";
import { createFakeKubeApi, type FakeKubeApiOptions } from "../src/index.js";

interface Event {
  type: string;
  object: {
    kind?: string;
    code?: number;
    reason?: string;
    metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> };
    data?: Record<string, string>;
  };
}

/** Collects the events of one client-node watch and lets a test wait for them without sleeping. */
function collector() {
  const events: Event[] = [];
  let ended: unknown = "open";
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const check of waiters) check();
  };
  const until = (condition: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (condition()) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
    });
  return {
    events,
    onEvent: (type: string, object: Event["object"]) => {
      events.push({ type, object });
      notify();
    },
    onDone: (error: unknown) => {
      ended = error ?? null;
      notify();
    },
    untilCount: (count: number) => until(() => events.length >= count),
    untilEnded: () => until(() => ended !== "open").then(() => ended),
    summary: () => events.map((e) => `${e.type} ${e.object.metadata?.name ?? ""}`.trim()),
  };
}

async function setup(t: { teardown(fn: () => Promise<void> | void): void }, options?: FakeKubeApiOptions) {
  const api = await createFakeKubeApi(options);
  const kubeConfig = api.kubeConfig();
  const watch = new Watch(kubeConfig);
  const controllers: AbortController[] = [];
  t.teardown(async () => {
    for (const controller of controllers) controller.abort();
    await api.close();
  });
  const start = async (path: string, query: Record<string, string | number | boolean>) => {
    const events = collector();
    controllers.push(await watch.watch(path, query, events.onEvent, events.onDone));
    return events;
  };
  return { api, core: kubeConfig.makeApiClient(CoreV1Api), start };
}

const configMap = (name: string, data: Record<string, string>, labels: Record<string, string> = {}): V1ConfigMap => ({ metadata: { name, labels }, data });

test("a watch streams ADDED, MODIFIED and DELETED in order with increasing resourceVersions", async (t) => {
  const { core, start } = await setup(t);
  const list = await core.listNamespacedConfigMap({ namespace: "apps" });
  const events = await start("/api/v1/namespaces/apps/configmaps", { resourceVersion: list.metadata!.resourceVersion! });
  await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("a", { v: "1" }) });
  await core.createNamespacedConfigMap({ namespace: "other", body: configMap("elsewhere", { v: "1" }) });
  await core.replaceNamespacedConfigMap({ namespace: "apps", name: "a", body: configMap("a", { v: "2" }) });
  await core.deleteNamespacedConfigMap({ namespace: "apps", name: "a" });
  await events.untilCount(3);
  t.deepEqual(events.summary(), ["ADDED a", "MODIFIED a", "DELETED a"]);
  t.deepEqual(events.events[1]!.object.data, { v: "2" });
  t.is(events.events[0]!.object.kind, "ConfigMap", "watch objects carry their kind");
  const versions = events.events.map((e) => Number(e.object.metadata!.resourceVersion));
  t.deepEqual(
    [...versions].sort((a, b) => a - b),
    versions,
  );
  t.is(new Set(versions).size, 3);
});

test("a watch from a resourceVersion replays what happened after it; without one it starts with the current objects", async (t) => {
  const { core, start } = await setup(t);
  const first = await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("a", { v: "1" }) });
  await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("b", { v: "1" }) });
  await core.patchNamespacedConfigMap({ namespace: "apps", name: "a", body: [{ op: "replace", path: "/data/v", value: "2" }] });

  const replay = await start("/api/v1/namespaces/apps/configmaps", { resourceVersion: first.metadata!.resourceVersion! });
  await replay.untilCount(2);
  t.deepEqual(replay.summary(), ["ADDED b", "MODIFIED a"]);

  const fresh = await start("/api/v1/configmaps", {});
  await fresh.untilCount(2);
  t.deepEqual(fresh.summary(), ["ADDED a", "ADDED b"]);
  await core.deleteNamespacedConfigMap({ namespace: "apps", name: "b" });
  await fresh.untilCount(3);
  t.is(fresh.summary()[2], "DELETED b");
});

test("a watch from a resourceVersion older than the kept history gets a 410 Expired Status and ends", async (t) => {
  const { core, start } = await setup(t, { watchHistoryLimit: 2 });
  const first = await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("a", { v: "1" }) });
  for (const v of ["2", "3", "4"]) await core.replaceNamespacedConfigMap({ namespace: "apps", name: "a", body: configMap("a", { v }) });
  const expired = await start("/api/v1/namespaces/apps/configmaps", { resourceVersion: first.metadata!.resourceVersion! });
  t.is(await expired.untilEnded(), null);
  t.is(expired.events.length, 1);
  t.is(expired.events[0]!.type, "ERROR");
  t.like(expired.events[0]!.object, { kind: "Status", code: 410, reason: "Expired" });

  // The last two changes are still there.
  const list = await core.listNamespacedConfigMap({ namespace: "apps" });
  const recent = await start("/api/v1/namespaces/apps/configmaps", { resourceVersion: String(Number(list.metadata!.resourceVersion) - 1) });
  await recent.untilCount(1);
  t.deepEqual(recent.events[0]!.object.data, { v: "4" });
});

test("a label-selector watch sees objects enter (ADDED) and leave (DELETED) the selection", async (t) => {
  const { core, start } = await setup(t);
  const events = await start("/api/v1/namespaces/apps/configmaps", { labelSelector: "tier=web" });
  await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("a", { v: "1" }) });
  await core.replaceNamespacedConfigMap({ namespace: "apps", name: "a", body: configMap("a", { v: "2" }, { tier: "web" }) });
  await core.replaceNamespacedConfigMap({ namespace: "apps", name: "a", body: configMap("a", { v: "3" }, { tier: "web" }) });
  await core.replaceNamespacedConfigMap({ namespace: "apps", name: "a", body: configMap("a", { v: "4" }, { tier: "db" }) });
  await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("b", { v: "1" }, { tier: "web" }) });
  await events.untilCount(4);
  t.deepEqual(
    events.events.map((e) => `${e.type} ${e.object.metadata?.name} ${e.object.data?.v}`),
    ["ADDED a 2", "MODIFIED a 3", "DELETED a 4", "ADDED b 1"],
  );
});

test("timeoutSeconds ends the stream, and close() ends open watches", async (t) => {
  const { api, start } = await setup(t);
  const timed = await start("/api/v1/configmaps", { timeoutSeconds: 1 });
  t.is(await timed.untilEnded(), null);
  const open = await start("/apis/apps/v1/deployments", {});
  await api.close();
  const endedAfterClose = await Promise.race([
    open.untilEnded().then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref()),
  ]);
  t.true(endedAfterClose, "close() ends a watch that is still open");
});

test("allowWatchBookmarks sends BOOKMARKs; sendInitialEvents marks the end of the initial state", async (t) => {
  const { core, start } = await setup(t, { bookmarkIntervalMs: 20 });
  await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("a", { v: "1" }) });
  const events = await start("/api/v1/namespaces/apps/configmaps", {
    allowWatchBookmarks: true,
    sendInitialEvents: true,
    resourceVersionMatch: "NotOlderThan",
  });
  await events.untilCount(3);
  t.deepEqual(
    events.events.slice(0, 2).map((e) => e.type),
    ["ADDED", "BOOKMARK"],
  );
  t.deepEqual(events.events[1]!.object.metadata?.annotations, { "k8s.io/initial-events-end": "true" });
  t.is(events.events[2]!.type, "BOOKMARK");
  t.regex(events.events[2]!.object.metadata?.resourceVersion ?? "", /^\d+$/);
});

test("a client-node informer lists, follows changes, and relists after its watch expires", async (t) => {
  const { api, core } = await setup(t, { watchHistoryLimit: 1 });
  const kubeConfig = api.kubeConfig();
  const informerCore = kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("before", { v: "1" }) });
  let lists = 0;
  // The first list goes stale before its watch starts: two changes overflow the one-event history, so the watch gets 410.
  const listFn = async () => {
    const list = await informerCore.listNamespacedConfigMap({ namespace: "apps" });
    if (++lists === 1) {
      await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("during-1", { v: "1" }) });
      await core.createNamespacedConfigMap({ namespace: "apps", body: configMap("during-2", { v: "1" }) });
    }
    return list;
  };
  const informer = makeInformer(kubeConfig, "/api/v1/namespaces/apps/configmaps", listFn);
  const errors: string[] = [];
  const changes = collector();
  informer.on("add", (o) => changes.onEvent("add", o as Event["object"]));
  informer.on("update", (o) => changes.onEvent("update", o as Event["object"]));
  informer.on("delete", (o) => changes.onEvent("delete", o as Event["object"]));
  informer.on("error", (error) => errors.push(String(error)));
  await informer.start();
  t.teardown(() => informer.stop());
  await changes.untilCount(3);
  t.is(lists, 2);
  t.deepEqual(changes.summary(), ["add before", "add during-1", "add during-2"]);

  await core.replaceNamespacedConfigMap({ namespace: "apps", name: "before", body: configMap("before", { v: "2" }) });
  await core.deleteNamespacedConfigMap({ namespace: "apps", name: "during-1" });
  await changes.untilCount(5);
  t.deepEqual(changes.summary().slice(3), ["update before", "delete during-1"]);
  t.deepEqual(
    informer
      .list()
      .map((o) => o.metadata?.name)
      .sort(),
    ["before", "during-2"],
  );
  t.deepEqual(errors, []);
});
