import test from "ava";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { createInternalClient, fieldViolationsOf, silentLogger } from "@berth/kit";
import { createFakeKubeApi } from "@berth/fake-kube-api";
import { RouterService } from "@berth/proto/router/v1/router";
import type { WatchRoutesResponse } from "@berth/proto/router/v1/router";
import type { KubeConfig } from "@kubernetes/client-node";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { CertificateState } from "@berth/proto/type/v1/network";
import { readRouterConfig } from "../src/config.js";
import { startRouter } from "../src/start-router.js";
import { request } from "./support/http-client.js";
import { httpsGet } from "./support/https-client.js";
import { openTestStore } from "./support/store.js";
import type { TestStore } from "./support/store.js";
import { createCertificateAuthority, permittedDomainsOf } from "../src/tls/platform-ca.js";
import { startTestScheduler } from "./support/test-scheduler.js";
import { startUpstream } from "./support/upstream.js";

async function startTestRouter(
  t: import("ava").ExecutionContext,
  env: Record<string, string> = {},
  kubeConfig?: KubeConfig,
  prepare?: (store: TestStore) => Promise<void>,
) {
  const scheduler = await startTestScheduler();
  const store = await openTestStore();
  await prepare?.(store);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-router-"));
  const config = readRouterConfig({
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: scheduler.token,
    BERTH_SCHEDULER_URL: scheduler.url,
    BERTH_ROUTER_PORT: "0",
    BERTH_ROUTER_HTTP_PORT: "0",
    BERTH_ROUTER_HTTPS_PORT: "0",
    BERTH_ROUTER_REPLICA_WAIT_MS: "300",
    BERTH_ROUTER_CONSUMER: "router-test",
    ...env,
  });
  const router = await startRouter(config, {
    logger: silentLogger,
    database: store.db,
    scheduler: createInternalClient(SchedulerService, { baseUrl: scheduler.url, token: scheduler.token }),
    kubeConfig,
  });
  t.teardown(async () => {
    await router.close();
    await scheduler.close();
    await store.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const client = createInternalClient(RouterService, { baseUrl: router.url, token: scheduler.token });
  return { router, scheduler, store, client, dataDir };
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

test("a web process gets its route and an HTTPS certificate from the platform CA as soon as it has a healthy replica", async (t) => {
  const { router, scheduler, client, dataDir } = await startTestRouter(t);
  const web = await startUpstream("web-1");
  t.teardown(() => web.close());
  await router.ready;
  t.deepEqual((await client.listRoutes({ app: "shop" })).routes, []);

  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "web", [web.endpoint()]));
  t.is((await request(router.proxyHttpPort, "shop.berth.localhost", { path: "/x" })).body, "web-1 GET /x");

  let route = (await client.listRoutes({ app: "shop" })).routes[0];
  while (route?.certificate?.state !== CertificateState.ISSUED) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    route = (await client.listRoutes({ app: "shop" })).routes[0];
  }
  t.like(route, {
    hostname: "shop.berth.localhost",
    app: "shop",
    processType: "web",
    customDomain: false,
    healthyEndpoints: 1,
    url: `https://shop.berth.localhost:${router.proxyHttpsPort}`,
  });
  t.is(route.certificate?.issuer, "platform-ca");
  const caFile = fs.readFileSync(path.join(dataDir, "router", "platform-ca.pem"), "utf8");
  t.is(router.platformCaPem, caFile);
  t.is((await httpsGet(router.proxyHttpsPort, "shop.berth.localhost", caFile, "/secure")).body, "web-1 GET /secure");
});

test("a URL says how the proxy serves its hostname: HTTPS once the hostname has its own certificate, plain HTTP for a custom domain the platform CA may not certify; WatchRoutes follows", async (t) => {
  const { router, scheduler, client } = await startTestRouter(t);
  const web = await startUpstream("web-1");
  t.teardown(() => web.close());
  await router.ready;
  const watching = new AbortController();
  t.teardown(() => watching.abort());
  const stream = client.watchRoutes({}, { signal: watching.signal, timeoutMs: 0 })[Symbol.asyncIterator]();
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "web", [web.endpoint()]));
  await client.addDomain({ app: "shop", processType: "web", hostname: "shop.example.com" });

  const settled = (state: CertificateState | undefined) => state === CertificateState.ISSUED || state === CertificateState.FAILED;
  let routes = (await client.listRoutes({ app: "shop" })).routes;
  while (!routes.every((route) => settled(route.certificate?.state))) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    routes = (await client.listRoutes({ app: "shop" })).routes;
  }
  const expected = [
    ["shop.berth.localhost", `https://shop.berth.localhost:${router.proxyHttpsPort}`],
    ["shop.example.com", `http://shop.example.com:${router.proxyHttpPort}`],
  ];
  t.deepEqual(
    routes.map((route) => [route.hostname, route.url, route.certificate?.state]),
    expected.map(([hostname, url], index) => [hostname, url, index === 0 ? CertificateState.ISSUED : CertificateState.FAILED]),
  );
  t.regex(routes[1]!.certificate!.lastError, /the platform CA only certifies its own domains/);
  t.is((await request(router.proxyHttpPort, "shop.example.com", { path: "/x" })).body, "web-1 GET /x", "the HTTP URL serves the app");

  let watched: string[][] = [];
  while (JSON.stringify(watched) !== JSON.stringify(expected)) {
    const { value } = await stream.next();
    const shop = (value as WatchRoutesResponse | undefined)?.apps.find((app) => app.app === "shop");
    if (shop) watched = shop.routes.map((route) => [route.hostname, route.url]);
  }
  t.deepEqual(watched, expected, "the stream shows each hostname's URL as the proxy serves it");
});

test("a platform CA that earlier versions made (other name constraints, ten years) is replaced at start, with the certificates it issued", async (t) => {
  const old = await createCertificateAuthority("berth platform CA", ["other.localhost"], 3650);
  const { router, store, dataDir } = await startTestRouter(t, {}, undefined, async (prepared) => {
    await prepared.store.savePlatformCa(old);
    await prepared.store.ensureCertificates(["shop.berth.localhost"]);
    await prepared.store.updateCertificate("shop.berth.localhost", { state: "issued", issuer: "platform-ca", certificatePem: old.certificatePem });
  });
  await router.ready;
  t.not(router.platformCaPem, old.certificatePem);
  const caFile = fs.readFileSync(path.join(dataDir, "router", "platform-ca.pem"), "utf8");
  t.is(router.platformCaPem, caFile);
  t.deepEqual(permittedDomainsOf(caFile), ["berth.localhost", "localhost"]);
  t.is((await store.store.getPlatformCa())?.certificatePem, router.platformCaPem);
  t.not((await store.store.getCertificate("shop.berth.localhost"))?.certificatePem, old.certificatePem, "the old CA's certificate is gone");
});

test("custom domains: add, get, list, serve, refuse bad or taken names without storing anything, remove", async (t) => {
  const { router, scheduler, client } = await startTestRouter(t);
  const admin = await startUpstream("admin-1");
  t.teardown(() => admin.close());
  await router.ready;
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "admin-web", [admin.endpoint()]));

  const added = await client.addDomain({ app: "shop", processType: "admin-web", hostname: "Admin.Example.com." });
  t.like(added.route, { hostname: "admin.example.com", app: "shop", processType: "admin-web", customDomain: true, healthyEndpoints: 1 });
  t.is(added.route?.certificate?.state !== undefined, true);
  t.is((await request(router.proxyHttpPort, "admin.example.com", { path: "/panel" })).body, "admin-1 GET /panel");
  t.is((await client.getDomain({ hostname: "admin.example.com" })).route?.processType, "admin-web");

  const invalid = await rejection(client.addDomain({ app: "shop", processType: "admin-web", hostname: "bad_name.example.com" }));
  t.is(invalid.code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(invalid).map((violation) => violation.field),
    ["hostname"],
  );
  const foreign = await rejection(client.addDomain({ app: "shop", processType: "admin-web", hostname: "other.berth.localhost" }));
  t.is(foreign.code, Code.InvalidArgument);
  const worker = await rejection(client.addDomain({ app: "shop", processType: "worker", hostname: "jobs.example.com" }));
  t.deepEqual(
    fieldViolationsOf(worker).map((violation) => violation.field),
    ["process_type"],
  );
  const everything = await rejection(client.addDomain({ app: "Shop!", processType: "api-tcp", hostname: "*.example.com" }));
  t.deepEqual(
    fieldViolationsOf(everything).map((violation) => violation.field),
    ["app", "process_type", "hostname"],
  );
  const taken = await rejection(client.addDomain({ app: "blog", processType: "web", hostname: "admin.example.com" }));
  t.is(taken.code, Code.AlreadyExists);
  t.regex(taken.message, /another app/);

  const domains = (await client.listDomains({ app: "" })).routes.map((route) => route.hostname);
  t.deepEqual(domains, ["admin.example.com"], "refused requests stored nothing");
  t.deepEqual(
    (await client.listRoutes({ app: "shop" })).routes.map((route) => [route.hostname, route.customDomain]),
    [
      ["shop-admin.berth.localhost", false],
      ["admin.example.com", true],
    ],
  );

  t.is((await rejection(client.removeDomain({ app: "blog", hostname: "admin.example.com" }))).code, Code.NotFound, "only the owning app removes it");
  await client.removeDomain({ app: "shop", hostname: "admin.example.com" });
  t.is((await request(router.proxyHttpPort, "admin.example.com")).status, 404);
  t.is((await rejection(client.getDomain({ hostname: "admin.example.com" }))).code, Code.NotFound);
  t.is((await rejection(client.removeDomain({ app: "shop", hostname: "admin.example.com" }))).code, Code.NotFound);
});

test("removed replicas are reported drained, removed processes lose their route, deleting an app removes everything", async (t) => {
  const { router, scheduler, client } = await startTestRouter(t, { BERTH_ROUTER_TLS: "off" });
  const first = await startUpstream("web-1");
  const second = await startUpstream("web-2");
  t.teardown(async () => {
    await first.close();
    await second.close();
  });
  await router.ready;
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "web", [first.endpoint()]));
  t.is((await request(router.proxyHttpPort, "shop.berth.localhost")).body, "web-1 GET /");
  t.is((await client.listRoutes({ app: "" })).routes[0]?.url, `http://shop.berth.localhost:${router.proxyHttpPort}`);

  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "web", [second.endpoint()]));
  await scheduler.drainedReported("web-1");
  t.is((await request(router.proxyHttpPort, "shop.berth.localhost")).body, "web-2 GET /");

  // A broken stream is followed again from a fresh snapshot.
  scheduler.dropStreams();
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "admin-web", [first.endpoint()]));
  t.is((await request(router.proxyHttpPort, "shop-admin.berth.localhost")).body, "web-1 GET /");

  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "admin-web", [], true));
  t.is((await request(router.proxyHttpPort, "shop-admin.berth.localhost")).status, 404);
  t.deepEqual(
    (await client.listRoutes({ app: "shop" })).routes.map((route) => route.hostname),
    ["shop.berth.localhost"],
  );

  await client.addDomain({ app: "shop", processType: "web", hostname: "www.example.com" });
  await client.deleteAppRoutes({ app: "shop" });
  t.deepEqual((await client.listRoutes({ app: "shop" })).routes, []);
  t.is((await request(router.proxyHttpPort, "www.example.com")).status, 404);
  t.is((await rejection(client.deleteAppRoutes({ app: "" }))).code, Code.InvalidArgument);
});

test("a restarted scheduler that knows nothing yet does not take routes away; a newer snapshot does", async (t) => {
  const { router, scheduler, client } = await startTestRouter(t, { BERTH_ROUTER_TLS: "off" });
  const web = await startUpstream("web-1");
  const blog = await startUpstream("blog-1");
  t.teardown(async () => {
    await web.close();
    await blog.close();
  });
  await router.ready;
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("shop", "web", [web.endpoint()]));
  t.is((await request(router.proxyHttpPort, "shop.berth.localhost")).body, "web-1 GET /");

  // The new run's empty snapshot arrives first on the stream, then its first change.
  await scheduler.restart(true);
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("blog", "web", [blog.endpoint()]));
  t.is((await request(router.proxyHttpPort, "shop.berth.localhost")).body, "web-1 GET /");
  t.is((await request(router.proxyHttpPort, "blog.berth.localhost")).body, "blog-1 GET /");
  t.deepEqual((await client.listRoutes({ app: "" })).routes.map((route) => route.hostname).sort(), ["blog.berth.localhost", "shop.berth.localhost"]);

  // A run that has published everything, where shop went away meanwhile: its newer snapshot is the truth.
  await scheduler.restart(false, ["shop/web"]);
  await scheduler.acknowledged("router-test", scheduler.setWebEndpoints("blog", "web", [blog.endpoint()]));
  t.is((await request(router.proxyHttpPort, "shop.berth.localhost")).status, 404);
  t.deepEqual(
    (await client.listRoutes({ app: "" })).routes.map((route) => route.hostname),
    ["blog.berth.localhost"],
  );
});

test("calls without the internal credential are refused", async (t) => {
  const { router } = await startTestRouter(t, { BERTH_ROUTER_TLS: "off" });
  const anonymous = createInternalClient(RouterService, { baseUrl: router.url });
  t.is((await rejection(anonymous.listRoutes({ app: "" }))).code, Code.Unauthenticated);
});

test("on the kubernetes engine, routes and custom domains become Ingress objects and no proxy runs", async (t) => {
  const api = await createFakeKubeApi();
  t.teardown(() => api.close());
  const { router, scheduler, client } = await startTestRouter(t, { BERTH_ENGINE: "kubernetes", BERTH_PLATFORM_DOMAIN: "apps.example.net" }, api.kubeConfig());
  await router.ready;
  t.is(router.proxyHttpPort, 0);
  const ingresses = () => api.objects({ kind: "Ingress" }) as { metadata: { name: string }; spec: { rules: { host: string }[] } }[];
  scheduler.setWebEndpoints("shop", "web", [{ replica: "shop-web-abc", host: "10.0.0.7", port: 5000 }]);
  while (ingresses().length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  t.deepEqual(
    ingresses().map((ingress) => ingress.spec.rules.map((rule) => rule.host)),
    [["shop.apps.example.net"]],
  );
  t.is((await client.listRoutes({ app: "shop" })).routes[0]?.url, "https://shop.apps.example.net");

  await client.addDomain({ app: "shop", processType: "web", hostname: "www.example.com" });
  t.deepEqual(
    ingresses()[0]!.spec.rules.map((rule) => rule.host),
    ["shop.apps.example.net", "www.example.com"],
  );
  await client.deleteAppRoutes({ app: "shop" });
  t.deepEqual(ingresses(), []);
});

test("TURN hostnames get certificates from the platform CA on request; the set is exactly what was last asked; other names are refused by index", async (t) => {
  const { client, router, store } = await startTestRouter(t);
  const first = "k1token.turn.berth.localhost";
  const second = "k2token.turn.berth.localhost";
  const issued = async (hostnames: string[]) => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const { certificates } = await client.syncTurnCertificates({ hostnames });
      if (certificates.every((certificate) => certificate.status?.state === CertificateState.ISSUED)) return certificates;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no certificates for ${hostnames.join(", ")}`);
  };
  const [one, two] = await issued([first, second]);
  t.is(one!.hostname, first);
  t.is(one!.status?.issuer, "platform-ca");
  t.true(new crypto.X509Certificate(one!.certificatePem).checkHost(first) === first);
  t.true(new crypto.X509Certificate(two!.certificatePem).verify(new crypto.X509Certificate(router.platformCaPem!).publicKey));
  t.true(new crypto.X509Certificate(one!.certificatePem).checkPrivateKey(crypto.createPrivateKey(one!.privateKeyPem)));

  await client.syncTurnCertificates({ hostnames: [second] });
  t.deepEqual(await store.store.listTurnHostnames(), [second]);
  t.is(await store.store.getCertificate(first), undefined, "a gateway that went takes its certificate along");

  const refused = await rejection(client.syncTurnCertificates({ hostnames: [second, "shop.berth.localhost", "-x.turn.berth.localhost"] }));
  t.is(refused.code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(refused).map((violation) => violation.field),
    ["hostnames[1]", "hostnames[2]"],
  );
  t.deepEqual(await store.store.listTurnHostnames(), [second], "nothing changed");
});
