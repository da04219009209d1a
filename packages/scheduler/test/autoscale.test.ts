import test from "ava";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import { deployDemo, eventually, followRollout, httpGet, readyReplicas, startTestScheduler } from "./support/scheduler-harness.js";

test("a replica that burns CPU makes an autoscaled type grow, and it shrinks back when the load stops", async (t) => {
  const { client } = await startTestScheduler(t, {
    BERTH_SCHEDULER_AUTOSCALE_SAMPLE_MS: "300",
    BERTH_SCHEDULER_AUTOSCALE_UP_WINDOW_MS: "600",
    BERTH_SCHEDULER_AUTOSCALE_DOWN_WINDOW_MS: "2000",
  });
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  await client.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 1, maxReplicas: 3, targetCpuPercent: 25 } });
  const [first] = await readyReplicas(client, "shop", "web");
  // One core for 8 s: about 400% of a standard-1x's 256 millicores.
  await httpGet(first!.port, "/burn?ms=8000");

  const grown = await eventually(async () => {
    const web = (await client.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")!;
    return web.replicas === 3 ? web : undefined;
  }, "web to grow to 3");
  t.is(grown.lastAutoscale?.fromReplicas, 1);
  t.is(grown.lastAutoscale?.toReplicas, 3);
  t.true((grown.lastAutoscale?.observedCpuPercent ?? 0) > 25);
  t.regex(grown.lastAutoscale?.reason ?? "", /cpu \d+% of standard-1x against a target of 25%/);
  t.is(grown.autoscale?.maxReplicas, 3);
  await eventually(async () => ((await readyReplicas(client, "shop", "web")).length === 3 ? true : undefined), "three ready web replicas");

  const shrunk = await eventually(
    async () => {
      const web = (await client.getFormation({ app: "shop" })).processes.find((p) => p.processType === "web")!;
      return web.replicas === 1 ? web : undefined;
    },
    "web to shrink back to 1",
    90_000,
  );
  t.true((shrunk.lastAutoscale?.fromReplicas ?? 0) > 1);
  t.is(shrunk.lastAutoscale?.toReplicas, 1);
  await eventually(
    async () => ((await client.listReplicas({ app: "shop", processType: "web" })).replicas.length === 1 ? true : undefined),
    "one web replica left",
  );

  // Each decision is in the progress stream.
  const { rollouts } = await client.listRollouts({ app: "shop" });
  const steps = [];
  for (const rollout of rollouts.filter((r) => r.processTypes.includes("web"))) {
    steps.push(...(await followRollout(client, "shop", rollout.id)).events.filter((e) => e.kind === RolloutEventKind.AUTOSCALED).map((e) => e.message));
  }
  t.true(
    steps.some((message) => /from 1 to 3/.test(message)),
    steps.join("\n"),
  );
  t.true(
    steps.some((message) => /from [23] to 1 /.test(message)),
    steps.join("\n"),
  );
});
