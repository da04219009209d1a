import test from "ava";
import type { ExecutionContext } from "ava";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CanaryState, CanaryTrafficState } from "@berth/proto/type/v1/release";
import type { Rollout } from "@berth/proto/type/v1/release";
import { deployDemo, demoArchive, eventually, startTestScheduler, uploadArchive } from "./support/scheduler-harness.js";

/** shop on v1, then v2 as a canary held at 10 %, running; answers the scheduler's client and when the canary took its first request. */
async function runningCanary(t: ExecutionContext, settleMs: number) {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_TRAFFIC_SETTLE_MS: String(settleMs) });
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  const uploadId = await uploadArchive(client, "shop", await demoArchive());
  await client.createRelease({ app: "shop", artifact: { source: { case: "sourceUploadId", value: uploadId } }, canary: { percent: 10, intervalMs: 600_000 } });
  const rollout = await eventually(async () => {
    const shown = (await client.getCanary({ app: "shop" })).rollout;
    return shown?.canary?.state === CanaryState.RUNNING ? shown : undefined;
  }, "the canary running");
  const report = (consumer: string, from: Date, to: Date, canary: { requests: number; failed?: number; appErrors?: number }) =>
    client.reportTraffic({
      consumer,
      periodStart: timestampFromDate(from),
      periodEnd: timestampFromDate(to),
      counts: [
        { app: "shop", figures: { processType: "web", releaseVersion: 1, requests: 90n } },
        {
          app: "shop",
          figures: {
            processType: "web",
            releaseVersion: 2,
            requests: BigInt(canary.requests),
            failed: BigInt(canary.failed ?? 0),
            appErrors: BigInt(canary.appErrors ?? 0),
          },
        },
      ],
    });
  return { client, runningSince: timestampDate(rollout.canary!.stepStartedAt!), report };
}

const canaryFigures = (rollout: Rollout | undefined) => {
  const figures = rollout?.canary?.traffic.find((entry) => entry.releaseVersion === 2);
  return { requests: Number(figures?.requests), failed: Number(figures?.failed), appErrors: Number(figures?.appErrors) };
};

test("an ended canary's figures wait for every router that served its window to report past its end, and then cover the whole window", async (t) => {
  const { client, runningSince, report } = await runningCanary(t, 600_000);
  const during = new Date();
  await report("router-a", runningSince, during, { requests: 5, appErrors: 1 });
  await report("router-b", runningSince, during, { requests: 4 });

  const aborted = (await client.abortCanary({ app: "shop" })).rollout;
  t.is(aborted?.canary?.trafficState, CanaryTrafficState.COUNTING);
  t.deepEqual(canaryFigures(aborted), { requests: 9, failed: 0, appErrors: 1 });
  const endedAt = timestampDate(aborted!.canary!.endedAt!);
  t.true(endedAt >= during);

  // Each router's last period ends after the abort; until both came, the figures may still grow.
  const past = new Date(endedAt.getTime() + 1);
  await report("router-a", during, past, { requests: 3, failed: 1 });
  const halfway = (await client.getCanary({ app: "shop" })).rollout;
  t.is(halfway?.canary?.trafficState, CanaryTrafficState.COUNTING);
  await report("router-b", during, past, { requests: 2 });
  const counted = (await client.getCanary({ app: "shop" })).rollout;
  t.is(counted?.canary?.trafficState, CanaryTrafficState.COMPLETE);
  t.deepEqual(canaryFigures(counted), { requests: 14, failed: 1, appErrors: 1 });
  // Only the web types, per release: the serving release's share is there too.
  t.deepEqual(
    counted?.canary?.traffic.map((entry) => [entry.processType, entry.releaseVersion, Number(entry.requests)]),
    [
      ["web", 1, 360],
      ["web", 2, 14],
    ],
  );
  // A report after that changes nothing: the record is final.
  await report("router-a", past, new Date(past.getTime() + 1000), { requests: 7 });
  const { release } = await client.getRelease({ app: "shop", version: 2 });
  t.is(release?.canary?.trafficState, CanaryTrafficState.COMPLETE);
  t.deepEqual(canaryFigures({ canary: release?.canary } as Rollout), { requests: 14, failed: 1, appErrors: 1 });
});

test("a router that served a canary's window and stops reporting is waited for only until the settle timeout: the figures are then marked partial", async (t) => {
  const { client, runningSince, report } = await runningCanary(t, 300);
  await report("router-a", runningSince, new Date(), { requests: 6, failed: 1 });
  await client.abortCanary({ app: "shop" });
  const settled = await eventually(async () => {
    const { rollout } = await client.getCanary({ app: "shop" });
    return rollout?.canary?.trafficState === CanaryTrafficState.COUNTING ? undefined : rollout;
  }, "the canary's figures made final");
  t.is(settled.canary?.trafficState, CanaryTrafficState.PARTIAL);
  t.deepEqual(canaryFigures(settled), { requests: 6, failed: 1, appErrors: 0 });
});
