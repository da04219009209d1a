import * as http from "node:http";
import test from "ava";
import { RolloutState } from "@berth/proto/type/v1/release";
import { deployDirectory, eventually, followRolloutThroughApi, startPlatformHarness } from "./support/platform-harness.js";

/** One GET through the router's proxy; the status, or the error's text. */
function get(port: number, host: string, agent: http.Agent): Promise<number | string> {
  return new Promise((resolve) => {
    const request = http.get({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
      response.on("error", (error) => resolve(String(error)));
    });
    request.on("error", (error) => resolve(String(error)));
  });
}

test("a rolling restart under steady load, through the real router and scheduler, fails no request", async (t) => {
  const h = await startPlatformHarness(t);
  const { clients } = await h.team("acme");
  await clients.apps.createApp({ name: "shop" });
  const { rollout: first } = await deployDirectory(clients, "shop");
  t.is((await followRolloutThroughApi(clients, "shop", first!.id)).rollout.state, RolloutState.SUCCEEDED);
  await clients.formation.scale({ app: "shop", replicas: { web: 2 } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const port = h.router.proxyHttpPort;
  await eventually(async () => {
    const { replicas } = await clients.formation.listReplicas({ app: "shop", processType: "web" });
    return replicas.filter((replica) => replica.ready).length === 2 && (await get(port, "shop.berth.localhost", agent)) === 200 ? true : undefined;
  }, "two ready web replicas behind the router");

  const names = async () => (await clients.formation.listReplicas({ app: "shop", processType: "web" })).replicas.map((replica) => replica.name).sort();
  const before = await names();

  let stop = false;
  let ok = 0;
  const failures: (number | string)[] = [];
  const worker = async () => {
    while (!stop) {
      const outcome = await get(port, "shop.berth.localhost", agent);
      if (outcome === 200) ok++;
      else failures.push(outcome);
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  const { rollout } = await clients.formation.restartProcess({ app: "shop", processType: "web" });
  const outcome = await followRolloutThroughApi(clients, "shop", rollout!.id);
  // Keep the load on past the rollout's end, while the old replicas drain and stop.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  stop = true;
  await Promise.all(workers);
  t.is(outcome.rollout.state, RolloutState.SUCCEEDED);
  t.deepEqual(failures, []);
  t.true(ok > 50, `${ok} requests answered`);
  const after = await names();
  t.false(
    after.some((name) => before.includes(name)),
    `every replica was replaced: ${before.join(", ")} -> ${after.join(", ")}`,
  );
});
