import test from "ava";
import type { ExecutionContext } from "ava";
import type { KubernetesObject } from "@kubernetes/client-node";
import { silentLogger, watchCollection } from "@berth/kit";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import type { FakeKubeApiOptions } from "@berth/fake-kube-api";

import { createKubeApiProxy } from "./support/kube-api-proxy.js";

const NAMESPACE = "apps";

async function setup(t: ExecutionContext, options: FakeKubeApiOptions = {}) {
  const api = await createFakeKubeApi(options);
  t.teardown(() => api.close());
  const proxy = await createKubeApiProxy(api);
  t.teardown(() => proxy.close());
  const configMap = async (name: string, data: Record<string, string>, method: "POST" | "PUT" = "POST") => {
    const path = `${api.url}/api/v1/namespaces/${NAMESPACE}/configmaps${method === "PUT" ? `/${name}` : ""}`;
    const response = await fetch(path, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ metadata: { name, labels: { app: "shop" } }, data }),
    });
    t.true(response.ok, await response.text());
  };
  /** Follows the shop's ConfigMaps; `seen(predicate)` resolves once a reported state matches. */
  const follow = () => {
    let changes = 0;
    let latest: ReadonlyMap<string, KubernetesObject & { data?: Record<string, string> }> = new Map();
    const waiters: { predicate: (objects: typeof latest) => boolean; resolve: () => void }[] = [];
    const watch = watchCollection({
      kubeConfig: proxy.kubeConfig(),
      apiVersion: "v1",
      kind: "ConfigMap",
      plural: "configmaps",
      namespace: NAMESPACE,
      labelSelector: "app=shop",
      logger: silentLogger,
      retryMs: 50,
      onChange(objects) {
        changes += 1;
        latest = new Map(objects);
        for (const waiter of [...waiters]) {
          if (waiter.predicate(latest)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
      },
    });
    t.teardown(() => watch.stop());
    return {
      seen: (predicate: (objects: typeof latest) => boolean) =>
        predicate(latest) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ predicate, resolve })),
      stop: () => watch.stop(),
      changes: () => changes,
    };
  };
  return { api, proxy, configMap, follow };
}

test("the collection is listed, then followed through additions, changes and deletions", async (t) => {
  const { api, configMap, follow } = await setup(t);
  await configMap("a", { v: "1" });
  const watch = follow();
  await watch.seen((objects) => objects.get("a")?.data?.v === "1");
  await configMap("b", { v: "1" });
  await watch.seen((objects) => objects.has("b"));
  await configMap("a", { v: "2" }, "PUT");
  await watch.seen((objects) => objects.get("a")?.data?.v === "2");
  await fetch(`${api.url}/api/v1/namespaces/${NAMESPACE}/configmaps/b`, { method: "DELETE" });
  await watch.seen((objects) => !objects.has("b") && objects.size === 1);
  t.is(api.requests.filter((request) => request.verb === "list").length, 1, "one list, then only the watch");
});

test("a watch cut off resumes from where it stopped, without listing again", async (t) => {
  const { api, proxy, configMap, follow } = await setup(t);
  const watch = follow();
  await configMap("a", { v: "1" });
  await watch.seen((objects) => objects.has("a"));
  await configMap("gone", { v: "1" });
  await watch.seen((objects) => objects.has("gone"));
  proxy.blockWatches(true);
  proxy.dropConnections();
  await configMap("b", { v: "1" });
  await fetch(`${api.url}/api/v1/namespaces/${NAMESPACE}/configmaps/gone`, { method: "DELETE" });
  proxy.blockWatches(false);
  await watch.seen((objects) => [...objects.keys()].sort().join() === "a,b");
  t.is(api.requests.filter((request) => request.verb === "list").length, 1);
  t.true(api.requests.filter((request) => request.verb === "watch").length >= 2);
});

test("a watch whose history is gone (410 Expired) lists the collection again", async (t) => {
  const { api, proxy, configMap, follow } = await setup(t, { watchHistoryLimit: 2 });
  const watch = follow();
  await configMap("a", { v: "1" });
  await watch.seen((objects) => objects.has("a"));
  proxy.blockWatches(true);
  proxy.dropConnections();
  for (const name of ["b", "c", "d", "e"]) await configMap(name, { v: "1" });
  await fetch(`${api.url}/api/v1/namespaces/${NAMESPACE}/configmaps/a`, { method: "DELETE" });
  proxy.blockWatches(false);
  await watch.seen((objects) => [...objects.keys()].sort().join() === "b,c,d,e");
  t.true(api.requests.filter((request) => request.verb === "list").length >= 2, "listed again after the expired watch");
});

test("a stopped watch reports nothing more", async (t) => {
  const { configMap, follow } = await setup(t);
  const stopped = follow();
  await stopped.seen((objects) => objects.size === 0);
  stopped.stop();
  const reported = stopped.changes();
  // A second watch sees the change the stopped one must not report.
  const witness = follow();
  await configMap("a", { v: "1" });
  await witness.seen((objects) => objects.has("a"));
  t.is(stopped.changes(), reported);
});
