// Restarts of the scheduler while a client keeps calling an app through the
// router: the routes, and the certificate they serve, must not notice.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { RolloutState } from "@berth/proto/type/v1/release";
import { freePort, startPlatformProcesses } from "./support/platform.js";
import { eventually } from "@berth/kit/testing";
import { deployDirectory, httpsGet, publicApi } from "./support/public-api.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const demo = join(root, "examples/demo");
const ADMIN_TOKEN = "scheduler-restart-admin-token-0123456789";
const RESTARTS = 3;

test("restarting the scheduler (SIGTERM and kill -9) while a client loops over the router: no 404, no certificate re-issued, the same replica serves", async (t) => {
  const httpsPort = await freePort();
  const platform = await startPlatformProcesses({
    BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
    BERTH_ROUTER_HTTP_PORT: String(await freePort()),
    BERTH_ROUTER_HTTPS_PORT: String(httpsPort),
    // A restart is not a decommission: the replicas stay and are adopted.
    BERTH_SCHEDULER_DRAIN_ON_SHUTDOWN: "false",
  });
  t.teardown(() => platform.stop());
  const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
  await admin.teams.createTeam({ name: "acme" });
  const acme = publicApi(platform.urls.api, (await admin.teams.createToken({ team: "acme", description: "restarts" })).secret);
  await acme.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(acme, "shop", demo, "web: node web.js\n");
  t.is(deployed.rollout.state, RolloutState.SUCCEEDED, deployed.rollout.message);
  const ca = readFileSync(join(platform.dataDir, "router", "platform-ca.pem"), "utf8");
  const first = await eventually(async () => {
    const response = await httpsGet(httpsPort, "shop.berth.localhost", "/", ca).catch(() => undefined);
    return response?.status === 200 ? response : undefined;
  }, "the app over HTTPS");

  const statuses = new Map<number, number>();
  const certificates = new Set<string>();
  const replicas = new Set<string>();
  let looping = true;
  const loop = (async () => {
    while (looping) {
      const response = await httpsGet(httpsPort, "shop.berth.localhost", "/", ca);
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      certificates.add(response.certificate);
      if (response.status === 200) replicas.add((JSON.parse(response.body) as { replica: string }).replica);
    }
  })();
  for (let round = 0; round < RESTARTS; round++) {
    await platform.kill("scheduler", round % 2 === 0 ? "SIGTERM" : "SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await platform.restart("scheduler");
    // Let the router reconnect and take the new run's snapshot before the next restart.
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
  looping = false;
  await loop;

  t.deepEqual([...statuses.keys()], [200], JSON.stringify([...statuses]));
  t.true((statuses.get(200) ?? 0) > 10, "the client kept calling throughout");
  t.deepEqual([...certificates], [first.certificate]);
  t.deepEqual([...replicas], [JSON.parse(first.body).replica], "the replica from before the restarts serves throughout");
});
