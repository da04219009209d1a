import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import type { Subnet } from "./address-plan.js";
import { gatewayAddress } from "./address-plan.js";
import { renderTeardown } from "./nft-ruleset.js";
import { systemBinary } from "./system-binaries.js";

const run = promisify(execFile);

/** Where `ip netns add` puts named network namespaces. */
const NETNS_DIRECTORY = "/run/netns";
const IP_FORWARD = "/proc/sys/net/ipv4/ip_forward";
const sendRedirects = (device: string) => `/proc/sys/net/ipv4/conf/${device}/send_redirects`;
/** 1 when br_netfilter passes bridged frames through the IP hooks (Docker and Kubernetes hosts load it). */
const BRIDGE_NETFILTER = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/** The host side of berth's private network: one bridge, a network namespace and veth per container, one nft table. */
export interface BridgeNetwork {
  readonly bridge: string;
  readonly table: string;
  /** Creates the bridge with the gateway address and turns on IPv4 forwarding; nothing changes when it exists. */
  ensureBridge(): Promise<void>;
  /**
   * Creates the network namespace `<prefix><namespace>` (a container's name,
   * or a pooled one's) with a veth on the bridge and `address`/32 behind the gateway, so every packet goes to the
   * host and nft sees every connection between containers. Without
   * br_netfilter the bridge port is also isolated from the other ports, so
   * not even a crafted frame crosses the bridge directly; with br_netfilter
   * bridged frames pass nft's forward hook anyway, and isolation would drop
   * the frames br_netfilter bridges after a virtual address's DNAT.
   */
  attach(namespace: string, address: string): Promise<string>;
  /** Removes a namespace and its veth; no error when it is gone. */
  detach(namespace: string): Promise<void>;
  /** The namespaces there are now, without the prefix (to clean up after a crash). */
  attached(): Promise<string[]>;
  /** Applies an nft script in one transaction. */
  applyRuleset(script: string): Promise<void>;
  /** Removes the table and the bridge (tests, uninstall). */
  teardown(): Promise<void>;
}

async function setSysctl(path: string, value: string): Promise<void> {
  if ((await readFile(path, "utf8")).trim() !== value) await writeFile(path, `${value}\n`);
}

function stdinRun(command: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} failed: ${stderr.trim()}`))));
    child.stdin.end(input);
  });
}

/** A bridge network; `prefix` names its namespaces (`<prefix><container>`) so several platforms or tests never collide. */
export function createBridgeNetwork(options: { bridge: string; table: string; subnet: Subnet; netnsPrefix: string }): BridgeNetwork {
  const { bridge, table, subnet, netnsPrefix } = options;
  const ip = systemBinary("ip") ?? "ip";
  const nft = systemBinary("nft") ?? "nft";
  const gateway = gatewayAddress(subnet);
  const netnsName = (name: string) => `${netnsPrefix}${name}`;
  // Interface names have at most 15 characters: a digest of the namespace's name.
  const hostVeth = (name: string) => `bv${createHash("sha256").update(netnsName(name)).digest("hex").slice(0, 12)}`;

  // A bridge without an address of its own takes the lowest of its ports' and changes it as veths come
  // and go; containers that cached the gateway's old one would send into the void until their ARP entry
  // expires. A fixed, locally administered address (as Docker gives docker0) never changes.
  const bridgeMac = `02:${createHash("sha256").update(bridge).digest("hex").slice(0, 10).match(/../g)!.join(":")}`;

  let ensured: Promise<void> | undefined;
  async function createBridge(): Promise<void> {
    const commands = existsSync(`/sys/class/net/${bridge}`)
      ? [`link set ${bridge} address ${bridgeMac}`]
      : [`link add ${bridge} address ${bridgeMac} type bridge`, `addr add ${gateway}/${subnet.prefix} dev ${bridge}`, `link set ${bridge} up`];
    await stdinRun(ip, ["-batch", "-"], [...commands, ""].join("\n"));
    // Left on afterwards, as Docker does: another berth network on this host may depend on it.
    await setSysctl(IP_FORWARD, "1");
    // Containers reach each other through the host, in and out of the bridge, so the kernel would send an
    // ICMP redirect for each new flow (nft drops them on the way out). Each redirect also resets the
    // sender's ICMP rate limit, and the port-unreachable of a denied connection is then swallowed: the
    // caller waits for a timeout instead of seeing "refused". The kernel sends redirects when the
    // device's setting or "all" is on, so both go off (as hardening guides advise for any host).
    await setSysctl(sendRedirects("all"), "0");
    await setSysctl(sendRedirects(bridge), "0");
  }

  return {
    bridge,
    table,
    ensureBridge() {
      // Once per process: concurrent first starts share one creation.
      ensured ??= createBridge().catch((error) => {
        ensured = undefined;
        throw error;
      });
      return ensured;
    },
    async attach(name, address) {
      const namespace = netnsName(name);
      const veth = hostVeth(name);
      await this.detach(name);
      await stdinRun(
        ip,
        ["-batch", "-"],
        [
          // The address may have belonged to a container that is gone: the
          // host would keep sending to that container's MAC until the entry expires.
          `neigh flush to ${address} dev ${bridge}`,
          `netns add ${namespace}`,
          `link add ${veth} type veth peer name eth0 netns ${namespace}`,
          `link set ${veth} master ${bridge}`,
          `link set dev ${veth} type bridge_slave isolated ${(await readFile(BRIDGE_NETFILTER, "utf8").catch(() => "0")).trim() === "1" ? "off" : "on"}`,
          `link set ${veth} up`,
          "",
        ].join("\n"),
      );
      await stdinRun(
        ip,
        ["-n", namespace, "-batch", "-"],
        [
          `addr add ${address}/32 dev eth0`,
          "link set lo up",
          "link set eth0 up",
          `route add ${gateway} dev eth0 scope link`,
          `route add default via ${gateway} dev eth0`,
          "",
        ].join("\n"),
      );
      return `${NETNS_DIRECTORY}/${namespace}`;
    },
    async detach(name) {
      const path = `${NETNS_DIRECTORY}/${netnsName(name)}`;
      if (!existsSync(path)) return;
      // The veth first: the kernel tears a namespace down in the background, and
      // until then its veth would stay on the bridge answering ARP for an address
      // the next container may already have. -force: one that is gone already is fine.
      // Two stops of one container (a crash restart racing a retirement) can
      // both get here: the one that finds the namespace gone has nothing to do.
      await stdinRun(ip, ["-force", "-batch", "-"], [`link delete ${hostVeth(name)}`, `netns delete ${netnsName(name)}`, ""].join("\n")).catch(
        (error: unknown) => {
          if (existsSync(path)) throw error;
        },
      );
    },
    async attached() {
      const names = await readdir(NETNS_DIRECTORY).catch(() => [] as string[]);
      return names.filter((entry) => entry.startsWith(netnsPrefix)).map((entry) => entry.slice(netnsPrefix.length));
    },
    async applyRuleset(script) {
      await stdinRun(nft, ["-f", "-"], script);
    },
    async teardown() {
      await stdinRun(nft, ["-f", "-"], renderTeardown(table));
      if (existsSync(`/sys/class/net/${bridge}`)) await run(ip, ["link", "delete", bridge]);
    },
  };
}
