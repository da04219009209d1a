import test from "ava";
import http from "node:http";
import { ReplicaState } from "@berth/proto/type/v1/process";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Subnet } from "../src/engine/local/container/address-plan.js";
import { parseSubnet } from "../src/engine/local/container/address-plan.js";
import type { WatchEndpointsResponse } from "@berth/proto/scheduler/v1/scheduler";
import { runcUsable } from "../src/engine/local/container/runc.js";
import { hostNames } from "../src/engine/local/container/runc-replica-runtime.js";
import { systemBinary } from "../src/engine/local/container/system-binaries.js";
import { demoArchive, deployDemo, eventually, followRollout, readyReplicas, startRuncScheduler, uploadArchive } from "./support/scheduler-harness.js";

const usable = await runcUsable();
// The scheduler on runc containers: needs root and runc (as in CI); skipped elsewhere, loudly.
const rootTest = usable.usable ? test.serial : test.serial.skip;
if (!usable.usable) console.warn(`runc engine tests skipped: ${usable.reason}`);

function get(host: string, port: number, path = "/"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path, agent: false, timeout: 5000 }, (response) => {
        let body = "";
        response.on("data", (chunk) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

rootTest(
  "on runc the demo deploys (release task included) into containers: replicas listen at their own bridge address, and every view says isolation: container",
  async (t) => {
    const { client } = await startRuncScheduler(t);
    await client.createApp({ team: "acme", name: "boxed" });
    const { rollout, events } = await deployDemo(client, "boxed");
    t.is(rollout.state, RolloutState.SUCCEEDED, events.map((event) => `${RolloutEventKind[event.kind]} ${event.message}`).join("\n"));
    await client.updateFormation({ app: "boxed", changes: [{ processType: "api-tcp", replicas: 1 }] });
    const [web] = await eventually(async () => {
      const ready = await readyReplicas(client, "boxed", "web");
      return ready.length === 1 ? ready : undefined;
    }, "a ready web replica");
    t.is(web!.isolation, "container");
    t.is(web!.port, 5000);
    t.regex(web!.host, /^10\.\d+\.\d+\.\d+$/);
    t.like(JSON.parse((await get(web!.host, web!.port)).body), { app: "boxed", process: "web" });
    const formation = await eventually(async () => {
      const { processes } = await client.getFormation({ app: "boxed" });
      return processes.find((process) => process.processType === "api-tcp")?.readyReplicas === 1 ? processes : undefined;
    }, "a ready api-tcp replica");
    t.deepEqual(
      formation.map((process) => [process.processType, process.isolation]),
      formation.map((process) => [process.processType, process.replicas > 0 ? "container" : ""]),
    );
    const releaseLines = [];
    for await (const { line } of client.streamLogs({ app: "boxed", processType: "release", tailLines: 20 })) releaseLines.push(line!.text);
    t.true(releaseLines.includes("migration done"), releaseLines.join("\n"));
  },
);

rootTest("a replica that allocates past its pod's memory is OOM-killed, restarted with backoff, and ps and its logs say OOMKilled", async (t) => {
  const { client } = await startRuncScheduler(t);
  await client.createApp({ team: "acme", name: "hog" });
  const uploadId = await uploadArchive(client, "hog", await demoArchive());
  await client.updateFormation({ app: "hog", changes: [{ processType: "web", replicas: 0 }] });
  const { rollout } = await client.createRelease({
    app: "hog",
    artifact: { source: { case: "sourceUploadId", value: uploadId } },
    procfile: "web: node web.js\nhog: node -e 'const keep = []; setInterval(() => keep.push(Buffer.alloc(16 << 20, 1)), 20)'\n",
  });
  await followRollout(client, "hog", rollout!.id);
  await client.updateFormation({ app: "hog", changes: [{ processType: "hog", replicas: 1, memoryMb: 64 }] });
  const replica = await eventually(async () => {
    const { replicas } = await client.listReplicas({ app: "hog", processType: "hog" });
    return replicas.find((entry) => entry.lastExitReason === "OOMKilled" && entry.restarts > 0);
  }, "the hog OOM-killed and restarted");
  t.is(replica.isolation, "container");
  t.not(replica.state, ReplicaState.UNSPECIFIED);
  const lines = [];
  for await (const { line } of client.streamLogs({ app: "hog", replica: replica.name, tailLines: 50 })) lines.push(line!.text);
  t.true(
    lines.some((text) => text.startsWith("OOMKilled")),
    lines.join("\n"),
  );
});

rootTest("a retiring tcp replica leaves its process's virtual address as soon as it retires, while it still runs for the routers to acknowledge", async (t) => {
  const { client, subnetText } = await startRuncScheduler(t);
  await client.createApp({ team: "acme", name: "vip" });
  await deployDemo(client, "vip");
  await client.updateFormation({ app: "vip", changes: [{ processType: "api-tcp", replicas: 2 }] });
  const [leaving, staying] = await eventually(async () => {
    const ready = await readyReplicas(client, "vip", "api-tcp");
    return ready.length === 2 ? ready : undefined;
  }, "two ready api-tcp replicas");
  const { table } = hostNames(parseSubnet(subnetText) as Subnet);
  /** The replica addresses behind the virtual address, from the live nft table. */
  const behindVip = async () => {
    // The system's nft: npx puts node_modules/.bin first, where @vercel/nft has a command of that name.
    const { stdout } = await promisify(execFile)(systemBinary("nft")!, ["list", "table", "ip", table]);
    const dnat = stdout.split("\n").find((line) => line.includes("dnat ip to numgen random"));
    return [leaving!.host, staying!.host].filter((address) => dnat?.includes(`${address} . 5000`));
  };
  await eventually(async () => ((await behindVip()).length === 2 ? true : undefined), "both replicas behind the virtual address");

  // A router that never acknowledges holds the retirement at its first step: the replica keeps running.
  const slowRouter = new AbortController();
  t.teardown(() => slowRouter.abort());
  const watching: AsyncIterator<WatchEndpointsResponse> = client
    .watchEndpoints({ consumer: "slow-router" }, { signal: slowRouter.signal, timeoutMs: 0 })
    [Symbol.asyncIterator]();
  await watching.next();
  await client.deleteReplica({ app: "vip", replica: leaving!.name });
  t.deepEqual(
    await eventually(
      async () => {
        const behind = await behindVip();
        return behind.length === 1 ? behind : undefined;
      },
      "the retiring replica out of the virtual address",
      15_000,
    ),
    [staying!.host],
  );
  const { replicas } = await client.listReplicas({ app: "vip", processType: "api-tcp" });
  t.is(replicas.find((replica) => replica.name === leaving!.name)?.state, ReplicaState.DRAINING, "it still runs, waiting for the acknowledgement");

  // The router acknowledges the set without it: the retirement goes on and the replica stops.
  for (;;) {
    const { value } = (await watching.next()) as IteratorYieldResult<WatchEndpointsResponse>;
    if (value.processes.some((process) => process.app === "vip" && process.processType === "api-tcp")) {
      await client.ackEndpoints({ consumer: "slow-router", generation: value.generation });
      break;
    }
  }
  await eventually(async () => {
    const { replicas: left } = await client.listReplicas({ app: "vip", processType: "api-tcp" });
    return left.some((replica) => replica.name === leaving!.name) ? undefined : true;
  }, "the retired replica stopped");
});
