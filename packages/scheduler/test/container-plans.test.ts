import test from "ava";
import { create } from "@bufbuild/protobuf";
import { WatchLocalPolicyResponseSchema } from "@berth/proto/netpol/v1/netpol";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { gatewayAddress, nextReplicaAddress, nextServiceAddress, parseSubnet, serviceRange } from "../src/engine/local/container/address-plan.js";
import type { Subnet } from "../src/engine/local/container/address-plan.js";
import { keyedValue } from "../src/engine/local/container/cgroups.js";
import { appAllowsOf } from "../src/engine/local/container/local-policy.js";
import type { NetworkEndpoint } from "../src/engine/local/container/nft-ruleset.js";
import { allowedFlows, renderRuleset, serviceRules } from "../src/engine/local/container/nft-ruleset.js";
import { containerSpec, initArgs } from "../src/engine/local/container/oci-spec.js";
import type { ContainerSpecInput } from "../src/engine/local/container/oci-spec.js";
import type { ContainerLaunch, ContainerRuntime } from "../src/engine/local/container/container-runtime.js";
import { createRuncReplicaRuntime } from "../src/engine/local/container/runc-replica-runtime.js";
import { releaseTaskSpecFor } from "../src/engine/local/replica-specs.js";
import type { SchedulerConfig } from "../src/config.js";
import type { ReleaseRecord } from "../src/store/releases.js";

const input: ContainerSpecInput = {
  command: "node web.js",
  env: { PORT: "5000", GREETING: "hi" },
  sourceDir: "/data/releases/shop/v3",
  uid: 200_001,
  hostname: "shop-web-v3-abc",
  cpuMillis: 256,
  memoryMb: 512,
  cgroupsPath: "/berth/shop-web-v3-abc",
  netnsPath: "/run/netns/berth-shop-web-v3-abc",
  hostsFile: "/data/containers/hosts",
  writableDirs: [],
  seccomp: true,
  gated: true,
  systemDirectories: ["/usr", "/etc"],
};

test("a container runs as its app's uid with no capabilities, no new privileges and a read-only root", (t) => {
  const spec = containerSpec(input) as { process: Record<string, any>; root: Record<string, unknown> };
  t.deepEqual(spec.process.user, { uid: 200_001, gid: 200_001, additionalGids: [] });
  t.true(spec.process.noNewPrivileges);
  t.deepEqual(Object.values(spec.process.capabilities).flat(), []);
  t.deepEqual(spec.root, { path: "rootfs", readonly: true });
  t.deepEqual(spec.process.env, ["PORT=5000", "GREETING=hi"]);
  t.is(spec.process.cwd, "/data/releases/shop/v3");
  t.deepEqual(spec.process.args, initArgs("node web.js", true));
});

test("a container sees the system directories and its release read-only, a private /tmp and its hosts file, and nothing else of the host", (t) => {
  const mounts = (containerSpec(input) as { mounts: Array<{ destination: string; type: string; source: string; options: string[] }> }).mounts;
  const binds = mounts.filter((mount) => mount.type === "bind").map((mount) => [mount.source, mount.destination, mount.options.includes("ro") ? "ro" : "rw"]);
  t.deepEqual(binds, [
    ["/usr", "/usr", "ro"],
    ["/etc", "/etc", "ro"],
    ["/data/releases/shop/v3", "/data/releases/shop/v3", "ro"],
    ["/data/containers/hosts", "/etc/hosts", "ro"],
  ]);
  t.is(mounts.find((mount) => mount.destination === "/tmp")?.type, "tmpfs");
  t.false(
    mounts.some((mount) => mount.destination.startsWith("/sys")),
    "no /sys, no cgroup mount",
  );
  const withTaskDir = (containerSpec({ ...input, writableDirs: ["/data/tasks/shop-release-v3"] }) as { mounts: typeof mounts }).mounts;
  t.deepEqual(withTaskDir.find((mount) => mount.destination === "/data/tasks/shop-release-v3")?.options, ["rbind", "nosuid", "nodev", "rw"]);
});

test("pod sizes become the cgroup memory limit and CPU quota; every namespace is the container's own", (t) => {
  const linux = (containerSpec(input) as { linux: Record<string, any> }).linux;
  t.is(linux.resources.memory.limit, 512 * 1024 * 1024);
  t.deepEqual(linux.resources.cpu, { quota: 25_600, period: 100_000, shares: 262 });
  t.is(linux.cgroupsPath, "/berth/shop-web-v3-abc");
  t.deepEqual(linux.namespaces, [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    { type: "network", path: "/run/netns/berth-shop-web-v3-abc" },
  ]);
  t.true(linux.seccomp.syscalls[0].names.includes("mount"));
  t.is(linux.seccomp.defaultAction, "SCMP_ACT_ALLOW");
  t.is((containerSpec({ ...input, seccomp: false }) as { linux: Record<string, unknown> }).linux.seccomp, undefined);
});

test("the subnet is split into the gateway, replica addresses (lower half) and virtual addresses (upper half)", (t) => {
  const subnet = parseSubnet("10.88.0.0/16") as Subnet;
  t.is(gatewayAddress(subnet), "10.88.0.1");
  t.is(serviceRange(subnet), "10.88.128.0/17");
  t.is(nextReplicaAddress(subnet, new Set()), "10.88.0.2");
  t.is(nextReplicaAddress(subnet, new Set(["10.88.0.2", "10.88.0.3"])), "10.88.0.4");
  t.is(nextServiceAddress(subnet, new Set()), "10.88.128.1");
  const small = parseSubnet("192.168.7.0/24") as Subnet;
  const replicas = new Set(Array.from({ length: 126 }, (_, index) => `192.168.7.${index + 2}`));
  t.is(nextReplicaAddress(small, replicas), undefined, "the lower half of a /24 holds 126 replicas");
  for (const [text, problem] of [
    ["10.88.0.0", "not an IPv4 subnet"],
    ["10.88.0.1/16", "host bits set"],
    ["10.88.0.0/28", "prefix must be between"],
    ["300.1.0.0/16", "not an IPv4 subnet"],
  ] as const) {
    const parsed = parseSubnet(text);
    t.true(typeof parsed === "string" && parsed.includes(problem), `${text}: ${String(parsed)}`);
  }
});

const endpoint = (
  name: string,
  app: string,
  team: string,
  processType: string,
  routingClass: RoutingClass,
  address: string,
  ready = true,
): NetworkEndpoint => ({
  name,
  app,
  team,
  processType,
  routingClass,
  address,
  port: 5000,
  ready,
});
const endpoints = [
  endpoint("api1", "shop", "a", "api-tcp", RoutingClass.TCP, "10.88.0.2"),
  endpoint("api2", "shop", "a", "api-tcp", RoutingClass.TCP, "10.88.0.3", false),
  endpoint("web1", "shop", "a", "web", RoutingClass.WEB, "10.88.0.4"),
  endpoint("worker1", "shop", "a", "worker", RoutingClass.UNSPECIFIED, "10.88.0.5"),
  endpoint("client1", "client", "a", "worker", RoutingClass.UNSPECIFIED, "10.88.0.6"),
  endpoint("foreign1", "foreign", "b", "worker", RoutingClass.UNSPECIFIED, "10.88.0.7"),
];

test("allowed flows: an app reaches its own listening processes; a trusted app of the same team reaches tcp only; never across teams, never web", (t) => {
  const cases: Array<{ title: string; allows: Parameters<typeof allowedFlows>[0]["allows"]; expected: string[] }> = [
    {
      title: "no trust: only the same app",
      allows: [],
      expected: [
        'ip saddr { 10.88.0.2, 10.88.0.3, 10.88.0.4, 10.88.0.5 } ip daddr . tcp dport { 10.88.0.2 . 5000, 10.88.0.3 . 5000, 10.88.0.4 . 5000 } accept comment "same app shop"',
      ],
    },
    {
      title: "a grant of one tcp process",
      allows: [{ rule: "client->shop/api-tcp", fromApp: "client", toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "api-tcp" }],
      expected: ['ip saddr { 10.88.0.6 } ip daddr . tcp dport { 10.88.0.2 . 5000, 10.88.0.3 . 5000 } accept comment "client->shop/api-tcp"'],
    },
    {
      title: "a cross-team grant is ignored",
      allows: [{ rule: "foreign->shop", fromApp: "foreign", toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "" }],
      expected: [],
    },
    {
      title: "a grant to web is ignored (web only from the router)",
      allows: [{ rule: "client->shop web", fromApp: "client", toApp: "shop", toClass: RoutingClass.WEB, toProcessType: "" }],
      expected: [],
    },
    {
      title: "a grant from an app with no containers renders nothing",
      allows: [{ rule: "ghost->shop", fromApp: "ghost", toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "" }],
      expected: [],
    },
  ];
  const sameApp = allowedFlows({ endpoints, allows: [] });
  for (const { title, allows, expected } of cases) {
    const rules = allowedFlows({ endpoints, allows });
    t.deepEqual(rules.slice(title.startsWith("no trust") ? 0 : sameApp.length), expected, title);
  }
});

test("a virtual address spreads over the ready replicas of its process only, and disappears with the last one", (t) => {
  const services = [{ app: "shop", processType: "api-tcp", address: "10.88.128.1", port: 5000 }];
  t.deepEqual(serviceRules({ endpoints, services }), [
    'ip daddr 10.88.128.1 tcp dport 5000 dnat ip to numgen random mod 1 map { 0 : 10.88.0.2 . 5000 } comment "shop-api-tcp"',
  ]);
  const bothReady = endpoints.map((entry) => ({ ...entry, ready: true }));
  t.regex(serviceRules({ endpoints: bothReady, services })[0]!, /mod 2 map \{ 0 : 10\.88\.0\.2 \. 5000, 1 : 10\.88\.0\.3 \. 5000 \}/);
  t.deepEqual(serviceRules({ endpoints: endpoints.filter((entry) => entry.processType !== "api-tcp"), services }), []);
});

test("the ruleset replaces berth's table in one transaction and keeps established connections", (t) => {
  const script = renderRuleset({
    table: "berth",
    bridge: "berth0",
    subnet: "10.88.0.0/16",
    serviceRange: "10.88.128.0/17",
    endpoints,
    services: [],
    allows: [],
  });
  const lines = script.split("\n");
  t.deepEqual(lines.slice(0, 3), ["table ip berth", "delete table ip berth", "table ip berth {"]);
  const fromContainers = script.slice(script.indexOf("chain from_containers"));
  t.true(fromContainers.indexOf("ct state established,related accept") < fromContainers.indexOf("reject"));
  t.regex(script, /oifname "berth0" ct state established,related accept/);
  t.regex(script, /masquerade/);
});

test("cgroup keyed files are read by key", (t) => {
  t.is(keyedValue("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n", "oom_kill"), 1);
  t.is(keyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", "oom_kill"), 4);
  t.is(keyedValue("usage_usec 1234\nuser_usec 1000\n", "usage_usec"), 1234);
  t.is(keyedValue("usage_usec 1234\n", "oom_kill"), undefined);
});

test("netpol's local policy becomes app-to-app allows; the router's and TURN gateways' allows need no rule (they run on the host)", (t) => {
  const policy = create(WatchLocalPolicyResponseSchema, {
    version: 7n,
    allows: [
      { rule: "trust client->shop", from: { kind: { case: "app", value: "client" } }, toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "" },
      { rule: "ingress->shop web", from: { kind: { case: "ingress", value: true } }, toApp: "shop", toClass: RoutingClass.WEB, toProcessType: "" },
      {
        rule: "turn->shop sfu",
        from: { kind: { case: "turnGateway", value: { app: "shop", processType: "sfu-rtc" } } },
        toApp: "shop",
        toClass: RoutingClass.RTC,
        toProcessType: "sfu-rtc",
      },
    ],
  });
  t.deepEqual(appAllowsOf(policy), [{ rule: "trust client->shop", fromApp: "client", toApp: "shop", toClass: RoutingClass.TCP, toProcessType: "" }]);
});

test("a release task's container runs at the web process's size (explicit overrides included); a one-off command at the default size", async (t) => {
  const launches: ContainerLaunch[] = [];
  const containers = {
    async prepare(launch: ContainerLaunch) {
      launches.push(launch);
      return { runtimeId: `runc:${launch.name}`, address: "10.88.0.2", runArgs: ["runc", "run", launch.name] };
    },
  } as unknown as ContainerRuntime;
  const runtime = createRuncReplicaRuntime(containers);
  const release = {
    app: "shop",
    version: 3,
    sourceDir: "/data/releases/shop/v3",
    processes: [{ processType: "release", command: "node migrate.js" }],
    config: {},
    formation: [
      { processType: "web", replicas: 2, size: "standard-2x", cpuMillis: null, memoryMb: 1536, health: {}, restartGeneration: 0 },
      { processType: "worker", replicas: 1, size: "standard-8x", cpuMillis: null, memoryMb: null, health: {}, restartGeneration: 0 },
    ],
  } as unknown as ReleaseRecord;
  const task = releaseTaskSpecFor({ releaseTimeoutMs: 60_000 } as SchedulerConfig, release, "team-a");
  t.deepEqual(await runtime.taskCommand(task), ["runc", "run", "shop-release-v3"]);
  t.like(launches[0], { name: "shop-release-v3", processType: "release", cpuMillis: 512, memoryMb: 1536 });
  await runtime.taskCommand({ ...task, name: "shop-run-1", resources: undefined });
  t.like(launches[1], { name: "shop-run-1", cpuMillis: 256, memoryMb: 512 });
});
