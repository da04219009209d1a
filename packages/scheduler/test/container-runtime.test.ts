import test from "ava";
import type { ExecutionContext } from "ava";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { createLogger } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { parseSubnet } from "../src/engine/local/container/address-plan.js";
import type { Subnet } from "../src/engine/local/container/address-plan.js";
import { createBridgeNetwork } from "../src/engine/local/container/bridge-network.js";
import type { BridgeNetwork } from "../src/engine/local/container/bridge-network.js";
import { cgroupVersion, createCgroupReader } from "../src/engine/local/container/cgroups.js";
import { CONTAINER_PORT, createContainerRuntime } from "../src/engine/local/container/container-runtime.js";
import type { ContainerLaunch, ContainerRuntime } from "../src/engine/local/container/container-runtime.js";
import { createRunc, runcSupportsSeccomp, runcUsable } from "../src/engine/local/container/runc.js";
import { probeTcp } from "../src/engine/local/probes.js";

const run = promisify(execFile);
const fixtures = resolve(import.meta.dirname, "fixtures/container");
const usable = await runcUsable();
// These tests run real containers: they need root and runc (as in CI). Elsewhere they are skipped, loudly.
const rootTest = usable.usable ? test.serial : test.serial.skip;
if (!usable.usable) console.warn(`container runtime tests skipped: ${usable.reason}`);

const id = `${process.pid % 10000}`;
const cgroupParent = `/berth-test-${id}`;

interface Setup {
  runtime: ContainerRuntime;
  directory: string;
  subnet: Subnet;
  launch(overrides: Partial<ContainerLaunch> & Pick<ContainerLaunch, "name" | "command">): ContainerLaunch;
}

const randomSubnet = () => `10.${200 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}.0/24`;

async function setup(
  t: ExecutionContext,
  suffix: string,
  directory?: string,
  subnetText = randomSubnet(),
  wrapNetwork = (network: BridgeNetwork) => network,
): Promise<Setup> {
  directory ??= await mkdtemp(join(tmpdir(), "berth-containers-"));
  const subnet = parseSubnet(subnetText) as Subnet;
  const network = wrapNetwork(
    createBridgeNetwork({ bridge: `bt${id}${suffix}`, table: `berth_test_${id}${suffix}`, subnet, netnsPrefix: `bt${id}${suffix}-` }),
  );
  const runc = createRunc(join("/run/berth-test", `${id}${suffix}`));
  const options = {
    directory,
    runc,
    cgroups: createCgroupReader(cgroupVersion()),
    cgroupParent: `${cgroupParent}${suffix}`,
    network,
    subnet,
    seccomp: await runcSupportsSeccomp(),
    firstUid: 150_000,
    logger: createLogger("container-test", { level: "error" }),
  };
  const runtime = createContainerRuntime(options);
  t.teardown(async () => {
    await createContainerRuntime(options).removeStrays(new Set());
    await network.teardown();
    await options.cgroups.removeEmpty(options.cgroupParent);
    await rm(directory, { recursive: true, force: true });
    await rm(runc.root, { recursive: true, force: true });
  });
  let counter = 0;
  return {
    runtime,
    directory: directory!,
    subnet,
    launch: (overrides) => {
      counter += 1;
      return {
        app: "shop",
        team: "team-a",
        processType: "worker",
        routingClass: RoutingClass.UNSPECIFIED,
        env: {},
        workDir: fixtures,
        cpuMillis: 256,
        memoryMb: 256,
        logDirectory: join(directory, "logs", `${overrides.name}-${counter}`),
        ...overrides,
      };
    },
  };
}

/** Runs a container to its end and returns the last line it printed, parsed. */
async function outputOf(setup: Setup, launch: ContainerLaunch): Promise<unknown> {
  const started = await setup.runtime.start(launch);
  const exit = await started.exited;
  const stdout = await readFile(join(launch.logDirectory, "stdout.log"), "utf8");
  const stderr = await readFile(join(launch.logDirectory, "stderr.log"), "utf8");
  const last = stdout.trim().split("\n").at(-1);
  if (exit.code !== 0 || last === undefined || last === "") throw new Error(`${launch.name} exited ${JSON.stringify(exit)}: ${stdout}${stderr}`);
  return JSON.parse(last);
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

rootTest("a container sees only its own processes, its release and /tmp: not the platform's environment, data directory or another app's files", async (t) => {
  const s = await setup(t, "a");
  const otherApp = await mkdtemp(join(tmpdir(), "berth-other-app-"));
  t.teardown(() => rm(otherApp, { recursive: true, force: true }));
  await chmod(otherApp, 0o755);
  await writeFile(join(otherApp, "secret.txt"), "other app's secret");
  process.env.BERTH_INTERNAL_TOKEN_FOR_TEST = "platform-secret";

  const files = await outputOf(
    s,
    s.launch({
      name: `iso-files-${id}`,
      command: `node probe.js files ${otherApp}/secret.txt ${s.directory} /proc/${process.pid}/environ probe.js /tmp /sys /run`,
    }),
  );
  t.deepEqual(files, {
    [`${otherApp}/secret.txt`]: "ENOENT",
    [s.directory]: "ENOENT",
    [`/proc/${process.pid}/environ`]: "ENOENT",
    "probe.js": "read",
    "/tmp": "listed",
    "/sys": "ENOENT",
    "/run": "ENOENT",
  });
  const pids = (await outputOf(s, s.launch({ name: `iso-pids-${id}`, command: "node probe.js pids" }))) as number[];
  t.true(pids.length <= 3 && pids.includes(1), `pids seen: ${pids}`);
  const env = (await outputOf(s, s.launch({ name: `iso-env-${id}`, command: "node probe.js env", env: { GREETING: "hi" } }))) as Record<string, string>;
  t.is(env.GREETING, "hi");
  t.is(env.PORT, String(CONTAINER_PORT));
  t.is(env.BERTH_INTERNAL_TOKEN_FOR_TEST, undefined);
  const writes = await outputOf(
    s,
    s.launch({
      name: `iso-write-${id}`,
      command: `id -u; (touch /usr/x 2>/dev/null && echo '"root writable"') || (touch /tmp/x && touch ${fixtures}/x 2>/dev/null && echo '"source writable"') || echo '"read-only"'`,
    }),
  );
  t.is(writes, "read-only");
});

rootTest("a container that allocates past its memory limit is OOM-killed and reported as such", async (t) => {
  const s = await setup(t, "b");
  const started = await s.runtime.start(
    s.launch({ name: `oom-${id}`, memoryMb: 64, command: "node -e 'const keep = []; for (;;) keep.push(Buffer.alloc(1 << 20, 1))'" }),
  );
  const exit = await started.exited;
  t.deepEqual(exit, { code: null, oomKilled: true });
});

rootTest("a CPU-bound container on standard-1x uses about its quota of a quarter core, not a whole core", async (t) => {
  const s = await setup(t, "c");
  const launch = s.launch({ name: `cpu-${id}`, cpuMillis: 256, command: "node -e 'for (;;) {}'" });
  const started = await s.runtime.start(launch);
  await waitUntil(async () => ((await s.runtime.cpuMs(launch.name)) ?? 0) > 100, "the container to use CPU");
  const before = { cpu: (await s.runtime.cpuMs(launch.name))!, at: performance.now() };
  await new Promise((done) => setTimeout(done, 3000));
  const after = { cpu: (await s.runtime.cpuMs(launch.name))!, at: performance.now() };
  const cores = (after.cpu - before.cpu) / (after.at - before.at);
  t.true(cores > 0.15 && cores < 0.35, `used ${cores.toFixed(3)} cores`);
  await s.runtime.signal(launch.name, "KILL");
  await started.exited;
});

/** A network namespace outside the bridge, joined to the host by a veth, with a TCP listener that answers with the caller's address. */
async function outsideListener(t: ExecutionContext): Promise<{ address: string; port: number; hostSide: string }> {
  const namespace = `bo${id}`;
  const [hostSide, address] = [`192.168.${200 + (process.pid % 50)}.1`, `192.168.${200 + (process.pid % 50)}.2`];
  await run("ip", ["netns", "add", namespace]);
  t.teardown(() => run("ip", ["netns", "delete", namespace]).then(() => undefined));
  await run("ip", ["link", "add", `bo${id}h`, "type", "veth", "peer", "name", "eth0", "netns", namespace]);
  await run("ip", ["addr", "add", `${hostSide}/30`, "dev", `bo${id}h`]);
  await run("ip", ["link", "set", `bo${id}h`, "up"]);
  await run("ip", ["-n", namespace, "addr", "add", `${address}/30`, "dev", "eth0"]);
  await run("ip", ["-n", namespace, "link", "set", "eth0", "up"]);
  const listener = spawn(
    "ip",
    [
      "netns",
      "exec",
      namespace,
      process.execPath,
      "-e",
      "require('net').createServer((s) => s.end('outside saw ' + s.remoteAddress)).listen(7000, '0.0.0.0', () => console.log('up'))",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.teardown(() => void listener.kill("SIGKILL"));
  await new Promise((done) => listener.stdout.once("data", done));
  return { address, port: 7000, hostSide };
}

rootTest(
  "tcp processes are reachable at <app>-<process> from trusted apps of the team only; web only from the host (the router); egress goes out through NAT",
  async (t) => {
    const s = await setup(t, "d");
    const outside = await outsideListener(t);
    const server = (name: string, app: string, team: string, processType: string, routingClass: RoutingClass, mode: string) =>
      s.launch({ name, app, team, processType, routingClass, command: `node serve.js ${mode}`, env: { NAME: name } });
    const apiLaunches = [
      server(`shop-api-1-${id}`, "shop", "team-a", "api-tcp", RoutingClass.TCP, "tcp"),
      server(`shop-api-2-${id}`, "shop", "team-a", "api-tcp", RoutingClass.TCP, "tcp"),
    ];
    const webLaunch = server(`shop-web-${id}`, "shop", "team-a", "web", RoutingClass.WEB, "http");
    const runs = await Promise.all([...apiLaunches, webLaunch].map((launch) => s.runtime.start(launch)));
    // A replica that exits leaves the virtual address: all connects would then go to the other one.
    const exited: string[] = [];
    for (const started of runs) void started.exited.then(() => exited.push(started.name));
    t.teardown(async () => {
      for (const started of runs) await s.runtime.signal(started.name, "KILL");
      await Promise.all(runs.map((started) => started.exited));
    });
    for (const started of runs) {
      await waitUntil(() => probeTcp(started.address, started.port, 500), `${started.name} to listen`);
      await s.runtime.setReady(started.name, true);
    }
    await s.runtime.setAllows([
      { rule: "client may call shop", fromApp: "client", toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "api-tcp" },
      { rule: "a cross-team grant is never honoured", fromApp: "foreign", toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "" },
      { rule: "web is never opened to an app", fromApp: "client", toApp: "shop", toClass: RoutingClass.WEB, toProcessType: "" },
    ]);
    const vip = s.runtime.serviceAddress("shop", "api-tcp")!;
    t.truthy(vip);
    const hosts = await readFile(join(s.directory, "hosts"), "utf8");
    t.true(hosts.includes(`${vip}\tshop-api-tcp`), hosts);

    const probe = (app: string, team: string, target: string, port = CONTAINER_PORT) =>
      outputOf(s, s.launch({ name: `${app}-probe-${Math.random().toString(36).slice(2, 8)}`, app, team, command: `node probe.js connect ${target} ${port}` }));
    const answers = new Set<string>();
    // numgen random picks per connection: 30 tries leave a 2^-29 chance of one replica only.
    for (let attempt = 0; attempt < 30 && answers.size < 2; attempt += 1) {
      const answer = (await probe("client", "team-a", "shop-api-tcp")) as { data?: string };
      t.regex(answer.data ?? JSON.stringify(answer), /^tcp shop-api-\d/);
      answers.add(answer.data!);
    }
    t.deepEqual(exited, [], "a replica exited while it was probed");
    t.is(answers.size, 2, "the virtual address spreads connections over both ready replicas");
    t.deepEqual(await probe("stranger", "team-a", "shop-api-tcp"), { error: "ECONNREFUSED" });
    t.deepEqual(await probe("foreign", "team-b", "shop-api-tcp"), { error: "ECONNREFUSED" });
    t.deepEqual(await probe("foreign", "team-b", runs[0]!.address), { error: "ECONNREFUSED" });
    t.deepEqual(await probe("client", "team-a", runs[2]!.address), { error: "ECONNREFUSED" }, "web is not reachable from another app's container");
    t.regex(((await probe("shop", "team-a", "shop-api-tcp")) as { data?: string }).data ?? "", /^tcp shop-api-\d/, "an app reaches its own tcp process");
    const web = await new Promise<string>((done, fail) =>
      http
        .get({ host: runs[2]!.address, port: CONTAINER_PORT, agent: false }, (response) => {
          let body = "";
          response.on("data", (chunk) => (body += chunk));
          response.on("end", () => done(body));
        })
        .on("error", fail),
    );
    t.is(web, `web ${webLaunch.name}`, "the host (where the router runs) reaches a web replica on the bridge");
    t.deepEqual(await probe("client", "team-a", outside.address, outside.port), { data: `outside saw ${outside.hostSide}` }, "egress is masqueraded");

    await s.runtime.setReady(runs[0]!.name, false);
    for (let attempt = 0; attempt < 4; attempt += 1)
      t.deepEqual(await probe("client", "team-a", "shop-api-tcp"), { data: `tcp ${apiLaunches[1]!.name}` }, "an unready replica leaves the virtual address");
  },
);

rootTest(
  "after a kill -9 of the scheduler, a restarted runtime adopts the containers it still wants and removes the rest: no container, cgroup, namespace or bundle is left",
  async (t) => {
    const suffix = `${id}e`;
    const directory = await mkdtemp(join(tmpdir(), "berth-containers-"));
    const subnet = randomSubnet();
    const holder = spawn(process.execPath, ["--import=tsx", resolve(import.meta.dirname, "support/container-holder.ts"), directory, subnet, suffix, fixtures], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((done) => holder.stdout.once("data", (chunk) => done(String(chunk))));
    const [kept, stray] = JSON.parse(line) as Array<{ name: string; runtimeId: string; address: string }>;
    holder.kill("SIGKILL");
    await new Promise((done) => holder.once("exit", done));

    const s = await setup(t, "e", directory, subnet);
    await waitUntil(() => probeTcp(kept!.address, CONTAINER_PORT, 500), "the kept container to answer after its scheduler died");
    const adopted = await s.runtime.adopt(kept!.runtimeId);
    t.is(adopted?.address, kept!.address);
    t.is(await s.runtime.adopt("local:123:456:789"), undefined, "an id of another runtime is not ours");
    t.deepEqual(await s.runtime.removeStrays(new Set([kept!.name])), [stray!.name]);
    const leftovers = async (name: string) => ({
      netns: existsSync(`/run/netns/bt${suffix}-${name}`),
      cgroup: existsSync(`/sys/fs/cgroup/memory/berth-test-${suffix}/${name}`) || existsSync(`/sys/fs/cgroup/berth-test-${suffix}/${name}`),
      bundle: existsSync(join(directory, "bundles", name)),
      container: (await run("runc", ["--root", `/run/berth-test/${suffix}`, "list", "-q"])).stdout.split("\n").includes(name),
    });
    t.deepEqual(await leftovers(stray!.name), { netns: false, cgroup: false, bundle: false, container: false });
    t.deepEqual(await leftovers(kept!.name), { netns: true, cgroup: true, bundle: true, container: true });
    const namespaces = (await readdir("/run/netns")).filter((entry) => entry.startsWith(`bt${suffix}-`));
    t.deepEqual(namespaces, [`bt${suffix}-${kept!.name}`], "the namespaces the dead runtime made ahead of demand are gone too");
    await s.runtime.signal(kept!.name, "KILL");
    t.deepEqual(await adopted!.exited, { code: null, oomKilled: false });
    t.deepEqual(await leftovers(kept!.name), { netns: false, cgroup: false, bundle: false, container: false });
  },
);

rootTest("a container's command runs once the firewall knows its address: its first connection to its own app passes however slow nft is", async (t) => {
  let slowFirewall = false;
  const s = await setup(t, "f", undefined, undefined, (network) => ({
    ...network,
    async applyRuleset(script) {
      // Far longer than runc takes to set a container up and node to boot in it.
      if (slowFirewall) await new Promise((done) => setTimeout(done, 2000));
      await network.applyRuleset(script);
    },
  }));
  const server = await s.runtime.start(
    s.launch({ name: `gate-api-${id}`, processType: "api-tcp", routingClass: RoutingClass.TCP, command: "node serve.js tcp", env: { NAME: "gate" } }),
  );
  t.teardown(async () => {
    await s.runtime.signal(server.name, "KILL");
    await server.exited;
  });
  await waitUntil(() => probeTcp(server.address, server.port, 500), "the server to listen");
  slowFirewall = true;
  t.deepEqual(await outputOf(s, s.launch({ name: `gate-client-${id}`, command: `node probe.js connect ${server.address} ${CONTAINER_PORT}` })), {
    data: "tcp gate",
  });
});
