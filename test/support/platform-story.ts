// The seeds' story end to end, through the public API only, with the five
// services running as separate processes, on the embedded PostgreSQL cluster
// or on an external PostgreSQL (DATABASE_URL).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import anyTest from "ava";
import type { TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { testDatabaseUrl, testDatabaseUrlFor } from "@berth/kit/testing";
import pg from "pg";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { ReleaseStatus, RolloutState } from "@berth/proto/type/v1/release";
import { SERVICES, freePort, startPlatformProcesses } from "./platform.js";
import type { PlatformProcesses } from "./platform.js";
import { eventually } from "@berth/kit/testing";
import { deployDirectory, followRollout, httpGet, httpsGet, publicApi } from "./public-api.js";
import type { PublicApi } from "./public-api.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const demo = join(root, "examples/demo");
const procfile = readFileSync(join(demo, "Procfile"), "utf8");
const ADMIN_TOKEN = "platform-story-admin-token-0123456789";

interface Context {
  platform: PlatformProcesses;
  httpsPort: number;
  httpPort: number;
  ca: string;
  admin: PublicApi;
  /** Bearer secrets of two teams. */
  tokens: { acme: string; globex: string };
}

function codeOf(error: unknown): Code {
  return ConnectError.from(error).code;
}

async function webResponse(
  t: { context: Context },
  hostname: string,
  scheme: "https" | "http" = "https",
): Promise<{ process: string; release: string; app: string }> {
  const response = scheme === "https" ? await httpsGet(t.context.httpsPort, hostname, "/", t.context.ca) : await httpGet(t.context.httpPort, hostname, "/");
  if (response.status !== 200) throw new Error(`${hostname} answered ${response.status}: ${response.body}`);
  return JSON.parse(response.body);
}

async function onTestPostgres(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: testDatabaseUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Where the platform keeps its data: the embedded cluster under BERTH_DATA_DIR, or a database of its own on the test PostgreSQL. */
export type StoryDatabase = "embedded" | "external";

/** Registers the story's tests, run on `database`. */
export function platformStory(database: StoryDatabase): void {
  const test = anyTest as TestFn<Context>;
  // On the test PostgreSQL, the platform gets a database of its own, dropped at the end.
  const externalDatabase = `berth_story_${randomBytes(6).toString("hex")}`;

  test.before(async (t) => {
    const [httpsPort, httpPort] = [await freePort(), await freePort()];
    const platform = await startPlatformProcesses({
      ...(database === "external" ? { DATABASE_URL: await createExternalDatabase() } : {}),
      BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
      BERTH_ROUTER_HTTP_PORT: String(httpPort),
      BERTH_ROUTER_HTTPS_PORT: String(httpsPort),
      BERTH_SCHEDULER_PROGRESS_DEADLINE_MS: "15000",
      BERTH_SCHEDULER_HEALTH_START_TIMEOUT_MS: "15000",
      BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "2000",
      BERTH_SCHEDULER_STOP_GRACE_MS: "2000",
    });
    const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
    const tokens = { acme: "", globex: "" };
    for (const team of ["acme", "globex"] as const) {
      await admin.teams.createTeam({ name: team });
      tokens[team] = (await admin.teams.createToken({ team, description: "story" })).secret;
    }
    const ca = readFileSync(join(platform.dataDir, "router", "platform-ca.pem"), "utf8");
    t.context = { platform, httpsPort, httpPort, ca, admin, tokens };
  });

  test.after.always(async (t) => {
    await t.context.platform?.stop();
    if (database === "external") await onTestPostgres(`DROP DATABASE IF EXISTS ${externalDatabase} WITH (FORCE)`);
  });

  async function createExternalDatabase(): Promise<string> {
    await onTestPostgres(`CREATE DATABASE ${externalDatabase}`);
    return testDatabaseUrlFor(externalDatabase);
  }

  test.serial("a team deploys, scales, resizes, serves HTTPS, survives a broken release, rolls back, and stays invisible to another team", async (t) => {
    const acme = publicApi(t.context.platform.urls.api, t.context.tokens.acme);
    const globex = publicApi(t.context.platform.urls.api, t.context.tokens.globex);
    await acme.apps.createApp({ name: "shop" });

    // Deploy: the release phase runs, then every type rolls out.
    const first = await deployDirectory(acme, "shop", demo, procfile);
    t.is(first.rollout.state, RolloutState.SUCCEEDED, first.rollout.message);
    t.true(
      first.events.some((e) => e.startsWith("3:")),
      "the release phase succeeded before the rollout",
    );

    // Scale out and up.
    await acme.formation.scale({ app: "shop", replicas: { web: 2, "admin-web": 1, worker: 1, "api-tcp": 1 } });
    await acme.formation.resize({ app: "shop", changes: [{ processType: "web", size: "standard-2x" }] });
    const formation = await eventually(
      async () => {
        const { processes } = await acme.formation.getFormation({ app: "shop" });
        const ready = (type: string, n: number) => processes.find((p) => p.processType === type)?.readyReplicas === n;
        return ready("web", 2) && ready("admin-web", 1) && ready("worker", 1) && ready("api-tcp", 1) ? processes : undefined;
      },
      "every scaled type ready",
      120_000,
    );
    const web = formation.find((p) => p.processType === "web")!;
    t.is(web.routingClass, RoutingClass.WEB);
    t.is(web.size, "standard-2x");
    t.true(
      web.urls.some((u) => u.startsWith("https://shop.berth.localhost")),
      web.urls.join(","),
    );
    const tcp = formation.find((p) => p.processType === "api-tcp")!;
    t.is(tcp.routingClass, RoutingClass.TCP);
    t.is(tcp.internalHostname, "shop-api-tcp");
    t.is(formation.find((p) => p.processType === "worker")!.routingClass, RoutingClass.WORKER);
    const { replicas } = await acme.formation.listReplicas({ app: "shop", processType: "web" });
    t.is(new Set(replicas.map((r) => r.zone)).size, 2, "two web replicas spread over two zones");

    // HTTPS through the router on both web URLs; a custom domain over HTTP (the platform CA, limited to the platform domain, certifies no other).
    t.like(await eventually(() => webResponse(t, "shop.berth.localhost"), "https on the web URL"), { process: "web", app: "shop" });
    t.like(await eventually(() => webResponse(t, "shop-admin.berth.localhost"), "https on the admin-web URL"), { process: "admin-web" });
    await acme.domains.addDomain({ app: "shop", processType: "admin-web", hostname: "admin.shop-story.example" });
    t.like(await eventually(() => webResponse(t, "admin.shop-story.example", "http"), "http on the custom domain"), { process: "admin-web" });
    await t.throwsAsync(webResponse(t, "admin.shop-story.example"), undefined, "no platform CA certificate for a custom domain");

    // A broken release (its web never starts listening) is rolled back automatically while the old one keeps serving.
    const servingRelease = (await webResponse(t, "shop.berth.localhost")).release;
    const broken = await acme.apps.updateConfig({ app: "shop", set: { BOOT_DELAY_MS: "600000" } });
    let failures = 0;
    let requests = 0;
    const servedReleases = new Set<string>();
    let following = true;
    const load = (async () => {
      while (following) {
        requests++;
        try {
          servedReleases.add((await webResponse(t, "shop.berth.localhost")).release);
        } catch {
          failures++;
        }
      }
    })();
    const rolledBack = await followRollout(acme, "shop", broken.rollout!.id);
    following = false;
    await load;
    t.is(rolledBack.rollout.state, RolloutState.ROLLED_BACK, rolledBack.rollout.message);
    t.truthy(rolledBack.rollout.reason, "a machine-readable reason is recorded");
    t.true(requests > 0);
    t.is(failures, 0, `${failures} of ${requests} requests failed during the broken rollout`);
    t.deepEqual([...servedReleases], [servingRelease], "only the old release served");
    const brokenRelease = (await acme.apps.getRelease({ app: "shop", version: broken.release!.version })).release!;
    t.not(brokenRelease.status, ReleaseStatus.SUCCEEDED);

    // Roll back by hand to v1 (which never had BOOT_DELAY_MS).
    const manual = await acme.apps.rollback({ app: "shop", version: 1 });
    t.is((await followRollout(acme, "shop", manual.rollout!.id)).rollout.state, RolloutState.SUCCEEDED);
    t.is(manual.release!.rollbackOfVersion, 1);
    const afterRollback = await eventually(async () => {
      const served = await webResponse(t, "shop.berth.localhost");
      return served.release === String(manual.release!.version) ? served : undefined;
    }, "the rolled-back release serves");
    t.is(afterRollback.process, "web");

    // A second team can neither see nor touch any of it.
    t.false((await globex.apps.listApps({})).apps.some((a) => a.name === "shop"));
    t.is(codeOf(await t.throwsAsync(globex.apps.getApp({ app: "shop" }))), Code.NotFound);
    t.is(codeOf(await t.throwsAsync(globex.formation.getFormation({ app: "shop" }))), Code.NotFound);
    t.is(codeOf(await t.throwsAsync(globex.formation.scale({ app: "shop", replicas: { web: 0 } }))), Code.NotFound);
    t.is(codeOf(await t.throwsAsync(globex.domains.addDomain({ app: "shop", processType: "web", hostname: "steal.example" }))), Code.NotFound);
    t.is(codeOf(await t.throwsAsync(globex.apps.deleteApp({ app: "shop" }))), Code.NotFound);
    t.is(codeOf(await t.throwsAsync(globex.apps.createApp({ name: "shop" }))), Code.AlreadyExists);
    t.like(await webResponse(t, "shop.berth.localhost"), { process: "web" });
    t.is((await acme.formation.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")!.replicas, 2);
  });

  test.serial("an operator lists and calls the public API with buf curl through reflection", async (t) => {
    const url = t.context.platform.urls.api;
    const curl = (...args: string[]) => run("npx", ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", ...args], { cwd: root });
    const services = (await curl("--list-services", url)).stdout.trim().split("\n");
    for (const name of ["AppService", "FormationService", "TeamService", "DomainService", "RtcService", "TrustService"]) {
      t.true(services.includes(`berth.api.v1.${name}`), name);
    }
    const health = await curl("-d", '{"service":""}', `${url}/grpc.health.v1.Health/Check`);
    t.deepEqual(JSON.parse(health.stdout), { status: "SERVING" });
    const auth = ["-H", `Authorization: Bearer ${t.context.tokens.acme}`];
    const apps = JSON.parse((await curl(...auth, "-d", "{}", `${url}/berth.api.v1.AppService/ListApps`)).stdout);
    t.true(apps.apps.some((a: { name: string }) => a.name === "shop"));
    const formation = JSON.parse((await curl(...auth, "-d", '{"app":"shop"}', `${url}/berth.api.v1.FormationService/GetFormation`)).stdout);
    t.true(
      formation.processes.some((p: { processType: string; routingClass: string }) => p.processType === "api-tcp" && p.routingClass === "ROUTING_CLASS_TCP"),
    );
    const refused = await t.throwsAsync(curl("-d", "{}", `${url}/berth.api.v1.AppService/ListApps`));
    t.regex(String((refused as { stderr?: string }).stderr), /unauthenticated/i);
  });

  test.serial("the same flow through the berth CLI, as a separate process", async (t) => {
    const berth = (args: string[], token = t.context.tokens.acme) =>
      run(process.execPath, [join(root, "packages/cli/bin/berth.js"), ...args], {
        cwd: root,
        env: { ...process.env, BERTH_API_URL: t.context.platform.urls.api, BERTH_TOKEN: token, BERTH_CONFIG_DIR: t.context.platform.dataDir },
        timeout: 240_000,
      });
    await berth(["apps:create", "cli-shop"]);
    const deployed = await berth(["deploy", demo, "--app", "cli-shop"]);
    t.regex(deployed.stdout + deployed.stderr, /succeeded/i);
    await berth(["pods:scale", "web=2", "worker=1", "--app", "cli-shop"]);
    const pods = JSON.parse((await berth(["pods", "--app", "cli-shop", "--json"])).stdout) as { processType: string; replicas?: number }[];
    t.is(pods.find((p) => p.processType === "web")?.replicas, 2);
    t.like(await eventually(() => webResponse(t, "cli-shop.berth.localhost"), "cli-shop serves over HTTPS"), { app: "cli-shop", process: "web" });
    t.regex((await berth(["releases", "--app", "cli-shop"])).stdout, /^VERSION/);
    const rollback = await berth(["rollback", "v1", "--app", "cli-shop"]);
    t.regex(rollback.stdout, /v2/);
    const foreign = await t.throwsAsync<Error & { code?: number; stderr?: string }>(berth(["apps:info", "--app", "cli-shop"], t.context.tokens.globex));
    t.not(foreign?.code, 0);
    t.regex(String(foreign?.stderr), /not.found/i);
  });

  test.serial(
    `every service${database === "embedded" ? " and the embedded postmaster" : ""} killed with SIGKILL and started again find their data and resume`,
    async (t) => {
      const { platform } = t.context;
      const acme = publicApi(platform.urls.api, t.context.tokens.acme);
      const before = await acme.formation.getFormation({ app: "shop" });
      const releasesBefore = (await acme.apps.listReleases({ app: "shop" })).releases.map((r) => r.version);
      for (const service of SERVICES) await platform.kill(service, "SIGKILL");
      if (database === "embedded") {
        const postmaster = Number(readFileSync(join(platform.dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
        process.kill(postmaster, "SIGKILL");
      }
      for (const service of SERVICES) await platform.restart(service);
      // Tokens, teams, apps, releases and the formation survived; the router serves again.
      t.deepEqual(
        (await acme.apps.listReleases({ app: "shop" })).releases.map((r) => r.version),
        releasesBefore,
      );
      const after = await eventually(
        async () => {
          const { processes } = await acme.formation.getFormation({ app: "shop" });
          return processes.find((p) => p.processType === "web")?.readyReplicas === 2 ? processes : undefined;
        },
        "the formation is ready again",
        120_000,
      );
      t.deepEqual(
        after.map((p) => [p.processType, p.replicas, p.size]),
        before.processes.map((p) => [p.processType, p.replicas, p.size]),
      );
      t.like(await eventually(() => webResponse(t, "shop.berth.localhost"), "shop serves after the restarts"), { process: "web", app: "shop" });
      t.like(await eventually(() => webResponse(t, "admin.shop-story.example", "http"), "the custom domain serves after the restarts"), {
        process: "admin-web",
      });
    },
  );
}
