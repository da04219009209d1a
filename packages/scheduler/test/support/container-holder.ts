// A stand-in scheduler for the kill -9 test: starts two containers with the
// runtime, prints their runtime ids as one JSON line, then waits to be killed.
import { readdir } from "node:fs/promises";
import { createLogger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { parseSubnet } from "../../src/engine/local/container/address-plan.js";
import type { Subnet } from "../../src/engine/local/container/address-plan.js";
import { createBridgeNetwork } from "../../src/engine/local/container/bridge-network.js";
import { cgroupVersion, createCgroupReader } from "../../src/engine/local/container/cgroups.js";
import { createContainerRuntime, NETWORK_POOL_SIZE } from "../../src/engine/local/container/container-runtime.js";
import { createRunc } from "../../src/engine/local/container/runc.js";

const [directory, subnetText, suffix, fixtures] = process.argv.slice(2) as [string, string, string, string];
const runtime = createContainerRuntime({
  directory,
  runc: createRunc(`/run/berth-test/${suffix}`),
  cgroups: createCgroupReader(cgroupVersion()),
  cgroupParent: `/berth-test-${suffix}`,
  network: createBridgeNetwork({
    bridge: `bt${suffix}`,
    table: `berth_test_${suffix}`,
    subnet: parseSubnet(subnetText) as Subnet,
    netnsPrefix: `bt${suffix}-`,
  }),
  subnet: parseSubnet(subnetText) as Subnet,
  seccomp: true,
  firstUid: 150_000,
  logger: createLogger("holder", { level: "error" }),
});
const launch = (name: string) => ({
  name,
  app: "shop",
  team: "team-a",
  processType: "api-tcp",
  routingClass: RoutingClass.TCP,
  command: "node serve.js tcp",
  env: { NAME: name },
  workDir: fixtures,
  cpuMillis: 256,
  memoryMb: 256,
  logDirectory: `${directory}/logs/${name}`,
});
const runs = [await runtime.start(launch(`kept-${suffix}`)), await runtime.start(launch(`stray-${suffix}`))];
// The kill -9 must leave the namespaces made ahead of demand behind, for the restarted runtime to clean up too.
const pooled = async () => (await readdir("/run/netns")).filter((entry) => entry.startsWith(`bt${suffix}-_`)).length;
while ((await pooled()) < NETWORK_POOL_SIZE) await new Promise((done) => setTimeout(done, 20));
console.log(JSON.stringify(runs.map((run) => ({ name: run.name, runtimeId: run.runtimeId, address: run.address }))));
setInterval(() => undefined, 60_000);
