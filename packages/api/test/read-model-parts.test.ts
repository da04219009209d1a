import test from "ava";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RoutesVersionSchema, WatchRoutesResponseSchema } from "@berth/proto/router/v1/router";
import { AppVersionSchema, WatchAppsResponseSchema } from "@berth/proto/scheduler/v1/scheduler";
import { WatchMintingTargetsResponseSchema } from "@berth/proto/turn/v1/turn";
import { AppSchema } from "@berth/proto/type/v1/release";
import { createAppFormations } from "../src/read-model/app-formations.js";
import { createAppOwners } from "../src/read-model/app-owners.js";
import { createAppRoutes } from "../src/read-model/app-routes.js";
import { STALE_MS, createMintingTargets } from "../src/read-model/minting-targets.js";

const app = (name: string, team: string, createdAtMs: number) => create(AppSchema, { name, team, createdAt: timestampFromMs(createdAtMs) });
const apps = (snapshot: boolean, ...entries: { app: ReturnType<typeof app>; deleted?: boolean }[]) =>
  create(WatchAppsResponseSchema, { snapshot, apps: entries.map(({ app, deleted }) => ({ app, deleted: deleted ?? false })) });

test("app owners answer only between a snapshot and the stream going down", (t) => {
  const owners = createAppOwners();
  t.is(owners.teamOf("shop"), undefined, "nothing before the first snapshot");
  owners.apply(apps(true, { app: app("shop", "acme", 1) }));
  t.is(owners.teamOf("shop"), "acme");
  t.is(owners.teamOf("blog"), undefined, "an app the directory does not hold is the scheduler's to answer");
  owners.apply(apps(false, { app: app("blog", "globex", 2) }));
  t.is(owners.teamOf("blog"), "globex");
  owners.down();
  t.is(owners.teamOf("shop"), undefined, "a stream that is down answers nothing");
  owners.apply(apps(true, { app: app("blog", "globex", 2) }));
  t.is(owners.teamOf("shop"), undefined, "the new snapshot replaces what was known");
  t.is(owners.teamOf("blog"), "globex");
});

test("a deleted app is forgotten, and news of it still on the way cannot bring it back", (t) => {
  const owners = createAppOwners();
  owners.apply(apps(true, { app: app("shop", "acme", 1) }));
  owners.deleted(app("shop", "acme", 1));
  t.is(owners.teamOf("shop"), undefined, "forgotten as soon as this API deleted it");
  owners.apply(apps(false, { app: app("shop", "acme", 1) }));
  t.is(owners.teamOf("shop"), undefined, "a change sent before the deletion is ignored");
  owners.apply(apps(false, { app: app("shop", "globex", 5) }));
  t.is(owners.teamOf("shop"), "globex", "the app made again by another team is known");
  owners.apply(apps(false, { app: app("shop", "acme", 1) }));
  t.is(owners.teamOf("shop"), "globex", "an older app of the name never replaces a newer one");
  owners.apply(apps(false, { app: app("shop", "globex", 5), deleted: true }));
  t.is(owners.teamOf("shop"), undefined);
});

test("a snapshot read before this API's deletion does not bring the app back", (t) => {
  const owners = createAppOwners();
  owners.apply(apps(true, { app: app("shop", "acme", 1) }));
  owners.down();
  owners.deleted(app("shop", "acme", 1));
  owners.apply(apps(true, { app: app("shop", "acme", 1) }));
  t.is(owners.teamOf("shop"), undefined);
  owners.apply(apps(true));
  owners.apply(apps(false, { app: app("shop", "acme", 1) }));
  t.is(owners.teamOf("shop"), "acme", "once a snapshot showed the deletion, the name is free again");
});

const version = (instance: string, generation: bigint) => create(RoutesVersionSchema, { instance, generation });
const routes = (snapshot: boolean, routesVersion: ReturnType<typeof version>, entries: Record<string, string[]>) =>
  create(WatchRoutesResponseSchema, {
    snapshot,
    routesVersion,
    apps: Object.entries(entries).map(([name, hostnames]) => ({
      app: name,
      routes: hostnames.map((hostname) => ({ hostname, app: name, processType: "web" })),
    })),
  });
const hostnamesOf = (view: ReturnType<typeof createAppRoutes>, name: string) => view.routesOf(name)?.map((route) => route.hostname);

test("app routes answer only while the stream is live; an app without routes has none", (t) => {
  const view = createAppRoutes();
  view.opening();
  t.is(view.routesOf("shop"), undefined);
  view.apply(routes(true, version("r1", 3n), { shop: ["shop.berth.localhost"] }));
  t.deepEqual(hostnamesOf(view, "shop"), ["shop.berth.localhost"]);
  t.deepEqual(hostnamesOf(view, "blog"), [], "the snapshot holds every app with routes");
  view.apply(routes(false, version("r1", 4n), { shop: [] }));
  t.deepEqual(hostnamesOf(view, "shop"), []);
  view.down();
  t.is(view.routesOf("blog"), undefined);
});

test("after this API's own write, the app is the router's to answer until the stream shows the write", (t) => {
  const view = createAppRoutes();
  view.opening();
  view.apply(routes(true, version("r1", 3n), { shop: ["shop.berth.localhost"] }));
  view.wrote("shop", version("r1", 5n));
  t.is(view.routesOf("shop"), undefined, "the stream is at 3, the write at 5");
  t.deepEqual(hostnamesOf(view, "blog"), [], "other apps still answer");
  view.apply(routes(false, version("r1", 4n), { blog: ["blog.berth.localhost"] }));
  t.is(view.routesOf("shop"), undefined);
  view.apply(routes(false, version("r1", 5n), { shop: ["shop.berth.localhost", "shop.example.com"] }));
  t.deepEqual(hostnamesOf(view, "shop"), ["shop.berth.localhost", "shop.example.com"]);
  view.wrote("shop", version("r1", 5n));
  t.truthy(view.routesOf("shop"), "a write the stream already showed waits for nothing");
});

test("of two concurrent writes the later version is awaited; another router instance only counts after a reconnect", (t) => {
  const view = createAppRoutes();
  view.opening();
  view.apply(routes(true, version("r1", 1n), {}));
  view.wrote("shop", version("r1", 7n));
  view.wrote("shop", version("r1", 6n));
  view.apply(routes(false, version("r1", 6n), { shop: ["a.example.com"] }));
  t.is(view.routesOf("shop"), undefined, "6 does not show the write answered with 7");
  view.wrote("blog", version("r2", 1n));
  view.apply(routes(false, version("r1", 9n), { shop: ["a.example.com", "b.example.com"] }));
  t.truthy(view.routesOf("shop"));
  t.is(view.routesOf("blog"), undefined, "a version of another router process does not compare");
  view.down();
  view.opening();
  view.apply(routes(true, version("r2", 1n), { blog: ["blog.example.com"] }));
  t.deepEqual(hostnamesOf(view, "blog"), ["blog.example.com"], "a snapshot asked for after the write shows it");
  view.wrote("shop", undefined);
  t.is(view.routesOf("shop"), undefined, "a write without a version waits for the next snapshot");
});

const appVersion = (instance: string, generation: bigint) => create(AppVersionSchema, { instance, generation });
/** WatchApps news of `name` at `generation` of scheduler `instance`, with web at `replicas`. */
const formationNews = (snapshot: boolean, name: string, instance: string, generation: bigint, replicas: number) =>
  create(WatchAppsResponseSchema, {
    snapshot,
    apps: [{ app: { name, team: "acme" }, version: appVersion(instance, generation), processes: [{ processType: "web", replicas }] }],
  });
const never = new AbortController().signal;
const webReplicas = async (view: ReturnType<typeof createAppFormations>, name: string, least?: ReturnType<typeof appVersion>, waitMs = 0) =>
  (await view.read(name, least, waitMs, never))?.[0]?.replicas;

test("app formations answer only while the stream is live, and an app they do not hold is the scheduler's", async (t) => {
  const view = createAppFormations();
  view.opening();
  t.is(await webReplicas(view, "shop"), undefined, "nothing before the first snapshot");
  view.apply(formationNews(true, "shop", "s1", 3n, 1));
  t.is(await webReplicas(view, "shop"), 1);
  t.is(await webReplicas(view, "blog"), undefined);
  view.down();
  t.is(await webReplicas(view, "shop"), undefined);
});

test("a read that names a version waits for the stream to show it, and gives up to the scheduler after its wait", async (t) => {
  const view = createAppFormations();
  view.opening();
  view.apply(formationNews(true, "shop", "s1", 3n, 1));
  t.is(await webReplicas(view, "shop", appVersion("s1", 3n)), 1, "a version already shown");
  t.is(await webReplicas(view, "shop", appVersion("s1", 4n), 20), undefined, "a version the stream does not show within the wait");
  const waiting = webReplicas(view, "shop", appVersion("s1", 5n), 5000);
  view.apply(formationNews(false, "shop", "s1", 4n, 2));
  view.apply(formationNews(false, "shop", "s1", 5n, 3));
  t.is(await waiting, 3, "answered as soon as the stream shows the version");
  const started = performance.now();
  t.is(await webReplicas(view, "shop", appVersion("s0", 9n), 5000), undefined, "another scheduler's version is not waited for");
  t.true(performance.now() - started < 1000);
  const aborted = new AbortController();
  const cancelled = view.read("shop", appVersion("s1", 9n), 5000, aborted.signal);
  aborted.abort();
  t.is(await cancelled, undefined, "a cancelled call stops waiting");
});

test("this API's own write is waited for by every read, until the stream shows it or a new stream starts", async (t) => {
  const view = createAppFormations();
  view.opening();
  view.apply(formationNews(true, "shop", "s1", 3n, 1));
  view.wrote("shop", appVersion("s1", 4n));
  t.is(await webReplicas(view, "shop"), undefined, "a read without a version still shows this API's write");
  view.apply(formationNews(false, "shop", "s1", 4n, 2));
  t.is(await webReplicas(view, "shop"), 2);
  view.wrote("shop", appVersion("s1", 6n));
  view.wrote("shop", appVersion("s1", 5n));
  view.apply(formationNews(false, "shop", "s1", 5n, 3));
  t.is(await webReplicas(view, "shop"), undefined, "of two writes, the later version is awaited");
  view.wrote("blog", appVersion("s0", 1n));
  view.down();
  view.opening();
  view.apply(formationNews(true, "blog", "s2", 1n, 4));
  t.is(await webReplicas(view, "blog"), 4, "a snapshot of a later stream holds a write answered before it opened");
});

const mintingMessage = (snapshot: boolean, apps: string[], targets: { app: string; processType: string; secret: string }[]) =>
  create(WatchMintingTargetsResponseSchema, {
    snapshot,
    apps,
    targets: targets.map((target) => ({ ...target, turnHostname: "k.turn.berth.localhost", port: 40000 })),
    policy: { defaultTtlSeconds: 3600, minTtlSeconds: 60, maxTtlSeconds: 86400, mintsPerMinute: 600 },
  });

test("minting targets answer only while the stream is live; a change replaces an app's processes; this API's rotation leaves the app to the allocator for a while", (t) => {
  let now = 0;
  const targets = createMintingTargets(() => now);
  t.is(targets.get("call", "sfu-rtc"), undefined, "nothing before the first snapshot");
  targets.apply(mintingMessage(true, [], [{ app: "call", processType: "sfu-rtc", secret: "s1" }]));
  t.is(targets.get("call", "sfu-rtc")?.target.secret, "s1");
  t.is(targets.get("call", "sfu-rtc")?.policy.mintsPerMinute, 600);
  targets.changed("call");
  t.is(targets.get("call", "sfu-rtc"), undefined, "rotated here: the allocator's until the stream shows it");
  targets.apply(mintingMessage(false, ["call"], [{ app: "call", processType: "sfu-rtc", secret: "s2" }]));
  t.is(targets.get("call", "sfu-rtc")?.target.secret, "s2");
  targets.changed("call");
  now += STALE_MS;
  t.is(targets.get("call", "sfu-rtc")?.target.secret, "s2", "a change the stream showed before the rotation returned does not stick");
  targets.apply(mintingMessage(false, ["call"], []));
  t.is(targets.get("call", "sfu-rtc"), undefined, "released");
  targets.apply(mintingMessage(false, ["voice"], [{ app: "voice", processType: "a-rtc", secret: "s3" }]));
  targets.down();
  t.is(targets.get("voice", "a-rtc"), undefined, "a stream that is down answers nothing");
});
