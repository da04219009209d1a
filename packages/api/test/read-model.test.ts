import test from "ava";
import type { ExecutionContext } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import { RolloutState } from "@berth/proto/type/v1/release";
import { startApi } from "../src/index.js";
import { apiClients } from "./support/api-harness.js";
import { deployDirectory, eventually, followRolloutThroughApi, startPlatformHarness } from "./support/platform-harness.js";
import type { PlatformHarness } from "./support/platform-harness.js";

const codeOf = (error: unknown) => ConnectError.from(error).code;

/**
 * Holds back the messages of the API's WatchApps and WatchRoutes streams
 * while shut, as a slow network or a busy peer might: the API must stay
 * correct whatever its streams have not told it yet.
 */
function createStreamGate(t: ExecutionContext) {
  let shut = false;
  const waiting = new Set<() => void>();
  const open = () => {
    shut = false;
    for (const wake of waiting) wake();
    waiting.clear();
  };
  t.teardown(open);
  const interceptor: Interceptor = (next) => async (request) => {
    const response = await next(request);
    if (!response.stream || !["WatchApps", "WatchRoutes"].includes(request.method.name)) return response;
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        for await (const message of messages) {
          while (shut && !request.signal.aborted) {
            await new Promise<void>((resolve) => {
              waiting.add(resolve);
              request.signal.addEventListener("abort", () => resolve(), { once: true });
            });
          }
          yield message;
        }
      })(),
    };
  };
  return {
    interceptor,
    shut() {
      shut = true;
    },
    open,
  };
}

/** How many calls of each method a service has answered, from its /metrics. */
async function handledCalls(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^grpc_server_handled_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\d+)/gm)) {
    counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return counts;
}

/** The peer calls `action` caused, as "scheduler.GetApp" → count. */
async function peerCallsOf(h: PlatformHarness, action: () => Promise<unknown>): Promise<Record<string, number>> {
  const peers = { scheduler: h.config.peers.scheduler, router: h.config.peers.router };
  const before = await Promise.all(Object.values(peers).map(handledCalls));
  await action();
  const after = await Promise.all(Object.values(peers).map(handledCalls));
  const calls: Record<string, number> = {};
  Object.keys(peers).forEach((peer, index) => {
    for (const [method, count] of after[index]!) {
      const delta = count - (before[index]!.get(method) ?? 0);
      if (delta > 0) calls[`${peer}.${method}`] = delta;
    }
  });
  return calls;
}

async function deployedApp(t: ExecutionContext, h: PlatformHarness, team: string, app: string) {
  const { clients } = await h.team(team);
  await clients.apps.createApp({ name: app });
  const deployed = await deployDirectory(clients, app);
  const { rollout } = await followRolloutThroughApi(clients, app, deployed.rollout!.id);
  t.is(rollout.state, RolloutState.SUCCEEDED);
  return clients;
}

/** Waits until a formation read of `app` calls no peer: the read model holds it. */
function servedFromMemory(h: PlatformHarness, clients: ReturnType<typeof apiClients>, app: string) {
  return eventually(async () => {
    const calls = await peerCallsOf(h, () => clients.formation.getFormation({ app }));
    return Object.keys(calls).length === 0 ? calls : undefined;
  }, `reads of ${app} served from the read model`);
}

/** A platform whose peer streams pass a gate, with acme's app "shop" read from memory, and a second team, globex. */
async function acmeShopServedFromMemory(t: ExecutionContext) {
  const gate = createStreamGate(t);
  const h = await startPlatformHarness(t, { peerInterceptors: [gate.interceptor] });
  const acme = (await h.team("acme")).clients;
  const globex = (await h.team("globex")).clients;
  await acme.apps.createApp({ name: "shop" });
  await servedFromMemory(h, acme, "shop");
  return { gate, h, acme, globex };
}

test("once the streams are up, a formation read calls no peer; other teams still get NOT_FOUND", async (t) => {
  const h = await startPlatformHarness(t);
  const acme = await deployedApp(t, h, "acme", "shop");
  const globex = (await h.team("globex")).clients;
  await servedFromMemory(h, acme, "shop");

  const reads = await peerCallsOf(h, () => Promise.all(Array.from({ length: 5 }, () => acme.formation.getFormation({ app: "shop" }))));
  t.is(reads["scheduler.GetApp"], undefined, "ownership comes from memory");
  t.is(reads["router.ListRoutes"], undefined, "routes come from memory");
  t.is(reads["scheduler.GetFormation"], undefined, "the formation comes from memory");

  const view = (await acme.formation.getFormation({ app: "shop" })).processes;
  const web = view.find((process) => process.processType === "web")!;
  t.true(web.urls[0]?.startsWith("https://shop.berth.localhost"), `web URL ${web.urls[0]}`);
  t.is(view.find((process) => process.processType === "api-tcp")?.internalHostname, "shop-api-tcp");

  for (const app of ["shop", "nowhere"]) {
    const error = ConnectError.from(await t.throwsAsync(globex.formation.getFormation({ app })));
    t.is(error.code, Code.NotFound, app);
    t.is(error.rawMessage, `app "${app}" not found`, "another team's app reads exactly like a missing one");
  }
  t.is(codeOf(await t.throwsAsync(globex.formation.scale({ app: "shop", replicas: { web: 2 } }))), Code.NotFound);
});

test("a client sees its own scale, resize and domain changes in the very next read, however far behind the streams are", async (t) => {
  const gate = createStreamGate(t);
  const h = await startPlatformHarness(t, { peerInterceptors: [gate.interceptor] });
  const acme = await deployedApp(t, h, "acme", "shop");
  await servedFromMemory(h, acme, "shop");
  const web = async () => (await acme.formation.getFormation({ app: "shop" })).processes.find((process) => process.processType === "web")!;

  gate.shut();
  for (let round = 1; round <= 2; round++) {
    const hostname = `www${round}.example.com`;
    await acme.domains.addDomain({ app: "shop", processType: "web", hostname });
    t.true((await web()).customDomains.includes(hostname), `round ${round}: the added domain is in the next read`);
    await acme.domains.removeDomain({ app: "shop", hostname });
    t.false((await web()).customDomains.includes(hostname), `round ${round}: the removed domain is gone from the next read`);
  }
  await acme.formation.scale({ app: "shop", replicas: { web: 2 } });
  t.is((await web()).replicas, 2);
  await acme.formation.resize({ app: "shop", changes: [{ processType: "web", size: "standard-2x" }] });
  t.is((await web()).size, "standard-2x");

  gate.open();
  await acme.domains.addDomain({ app: "shop", processType: "web", hostname: "www.example.com" });
  await servedFromMemory(h, acme, "shop");
  t.true((await web()).customDomains.includes("www.example.com"), "the stream caught up: the view is served from memory again");
});

test("a write's app_version sent to another API replica reads that write there, however far behind that replica's stream is", async (t) => {
  const gate = createStreamGate(t);
  const h = await startPlatformHarness(t, { peerInterceptors: [gate.interceptor] });
  const { token, clients: acme } = await h.team("acme");
  await acme.apps.createApp({ name: "shop" });
  await servedFromMemory(h, acme, "shop");
  const other = await startApi(h.config, { announce: () => {} });
  t.teardown(() => other.close(500));
  const elsewhere = apiClients(other.url, token);
  const webOf = (response: { processes: { processType: string; replicas: number; size: string }[] }) =>
    response.processes.find((p) => p.processType === "web")!;

  gate.shut();
  const scaled = await elsewhere.formation.scale({ app: "shop", replicas: { web: 0 } });
  t.regex(scaled.appVersion, /^\d+\.[0-9a-f-]+$/);
  t.is(webOf(await acme.formation.getFormation({ app: "shop" })).replicas, 1, "without the version the lagging replica answers what it knows");
  const calls = await peerCallsOf(h, async () => {
    t.is(webOf(await acme.formation.getFormation({ app: "shop", minAppVersion: scaled.appVersion })).replicas, 0, "with it, the write");
  });
  t.is(calls["scheduler.GetFormation"], 1, "read from the scheduler once the stream did not show the version in time");

  gate.open();
  await eventually(async () => {
    const read = await peerCallsOf(h, async () => {
      t.is(webOf(await acme.formation.getFormation({ app: "shop", minAppVersion: scaled.appVersion })).replicas, 0);
    });
    return Object.keys(read).length === 0 ? true : undefined;
  }, "the version read from memory once the stream shows it");

  const resized = await elsewhere.formation.resize({ app: "shop", changes: [{ processType: "web", size: "standard-2x" }] });
  t.is(webOf(await acme.formation.getFormation({ app: "shop", minAppVersion: resized.appVersion })).size, "standard-2x", "a live stream is waited for");

  const bad = ConnectError.from(await t.throwsAsync(acme.formation.getFormation({ app: "shop", minAppVersion: "yesterday" })));
  t.is(bad.code, Code.InvalidArgument);
  t.regex(bad.message, /min_app_version/);
});

test("an app deleted and made again by another team is NOT_FOUND to its old team at once, even before the stream says so", async (t) => {
  const { gate, h, acme, globex } = await acmeShopServedFromMemory(t);

  gate.shut();
  await acme.apps.deleteApp({ app: "shop" });
  await globex.apps.createApp({ name: "shop" });
  t.is(codeOf(await t.throwsAsync(acme.formation.getFormation({ app: "shop" }))), Code.NotFound);
  t.is(codeOf(await t.throwsAsync(acme.formation.scale({ app: "shop", replicas: { web: 0 } }))), Code.NotFound);
  t.truthy(await globex.formation.getFormation({ app: "shop" }));

  gate.open();
  await servedFromMemory(h, globex, "shop");
  t.is(codeOf(await t.throwsAsync(acme.formation.getFormation({ app: "shop" }))), Code.NotFound);
});

test("an app deleted and made again through another API replica is NOT_FOUND to its old team once the stream tells", async (t) => {
  const h = await startPlatformHarness(t);
  const replica = await startApi(h.config, { announce: () => {} });
  t.teardown(() => replica.close(500));
  const acme = await h.team("acme");
  const globex = await h.team("globex");
  await acme.clients.apps.createApp({ name: "shop" });
  await servedFromMemory(h, acme.clients, "shop");

  await apiClients(replica.url, acme.token).apps.deleteApp({ app: "shop" });
  await apiClients(replica.url, globex.token).apps.createApp({ name: "shop" });
  await eventually(async () => {
    const read = await acme.clients.formation.getFormation({ app: "shop" }).then(
      () => undefined,
      (error: unknown) => codeOf(error),
    );
    return read === Code.NotFound ? true : undefined;
  }, "the old team's read to be NOT_FOUND");
  t.truthy(await globex.clients.formation.getFormation({ app: "shop" }));
  t.is(codeOf(await t.throwsAsync(acme.clients.formation.scale({ app: "shop", replicas: { web: 0 } }))), Code.NotFound);
});

test("while the router is away reads go to it and fail; its new process's routes are read once it is back", async (t) => {
  const h = await startPlatformHarness(t);
  const acme = await deployedApp(t, h, "acme", "shop");
  await servedFromMemory(h, acme, "shop");
  const webUrl = async () => (await acme.formation.getFormation({ app: "shop" })).processes.find((process) => process.processType === "web")!.urls[0];
  t.is(await webUrl(), `https://shop.berth.localhost:${h.router.proxyHttpsPort}`);

  const oldPort = h.router.proxyHttpsPort;
  await h.restartRouter(() =>
    eventually(
      () =>
        acme.formation.getFormation({ app: "shop" }).then(
          () => undefined,
          (error: unknown) => (codeOf(error) === Code.Unavailable ? true : undefined),
        ),
      "reads to stop trusting the routes of a router that is gone",
    ),
  );
  t.not(h.router.proxyHttpsPort, oldPort);
  const url = `https://shop.berth.localhost:${h.router.proxyHttpsPort}`;
  await eventually(async () => ((await webUrl()) === url ? true : undefined), "the new router's URL in the view");
  await servedFromMemory(h, acme, "shop");
  t.is(await webUrl(), url);
});

test("after the scheduler restarts, ownership is asked of it until the new snapshot arrives", async (t) => {
  const { gate, h, acme, globex } = await acmeShopServedFromMemory(t);

  gate.shut();
  await h.restartScheduler();
  // The new stream's snapshot is held back: ownership is the scheduler's to answer.
  await eventually(async () => {
    const calls = await peerCallsOf(h, () => acme.formation.getFormation({ app: "shop" })).catch(() => undefined);
    return calls?.["scheduler.GetApp"] === 1 ? true : undefined;
  }, "a read through the restarted scheduler that asks it who owns the app");
  t.is(codeOf(await t.throwsAsync(globex.formation.getFormation({ app: "shop" }))), Code.NotFound);

  gate.open();
  await servedFromMemory(h, acme, "shop");
  t.is(codeOf(await t.throwsAsync(globex.formation.getFormation({ app: "shop" }))), Code.NotFound);
});
