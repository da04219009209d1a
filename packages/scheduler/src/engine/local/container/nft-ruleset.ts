import { RoutingClass } from "@berth/proto/type/v1/process";

/** A running container on the bridge, as the network sees it. */
export interface NetworkEndpoint {
  /** The replica's name (nft comments). */
  name: string;
  app: string;
  team: string;
  processType: string;
  routingClass: RoutingClass;
  address: string;
  port: number;
  /** Passing its health check: part of its process's virtual address. */
  ready: boolean;
}

/** The stable virtual address of a tcp process (`<app>-<process>`). */
export interface ServiceAddress {
  app: string;
  processType: string;
  address: string;
  port: number;
}

/** An app allowed to reach processes of another app (the netpol model's app-to-app allows). */
export interface AppAllow {
  /** Stable name, shown in the rule's comment. */
  rule: string;
  fromApp: string;
  toApp: string;
  toClass: RoutingClass;
  /** Empty: every process of that class. */
  toProcessType: string;
}

/** Everything the firewall and the virtual addresses depend on. */
export interface RulesetInput {
  /** The nft table (family ip) that berth owns entirely. */
  table: string;
  bridge: string;
  subnet: string;
  /** Where virtual addresses live (inside the subnet). */
  serviceRange: string;
  endpoints: readonly NetworkEndpoint[];
  services: readonly ServiceAddress[];
  allows: readonly AppAllow[];
}

const LISTENING = new Set([RoutingClass.WEB, RoutingClass.TCP, RoutingClass.RTC]);

function comment(text: string): string {
  return `comment "${text.replace(/[^A-Za-z0-9 _.:/>-]/g, "").slice(0, 120)}"`;
}

function set(items: readonly string[]): string {
  return `{ ${[...new Set(items)].join(", ")} }`;
}

/** An accept rule from some addresses to some address:port pairs, or nothing when either side is empty. */
function acceptRule(from: readonly NetworkEndpoint[], to: readonly NetworkEndpoint[], label: string): string[] {
  if (from.length === 0 || to.length === 0) return [];
  const targets = to.map((endpoint) => `${endpoint.address} . ${endpoint.port}`);
  return [`ip saddr ${set(from.map((endpoint) => endpoint.address))} ip daddr . tcp dport ${set(targets)} accept ${comment(label)}`];
}

/**
 * Which container-to-container connections are allowed, as accept rules:
 * an app's containers reach its own listening processes; an allow from the
 * trust model opens a tcp process to another app of the same team. Never
 * across teams, never a web process (only the router, on the host, reaches
 * those), never a worker (it does not listen).
 */
export function allowedFlows(input: Pick<RulesetInput, "endpoints" | "allows">): string[] {
  const byApp = new Map<string, NetworkEndpoint[]>();
  for (const endpoint of input.endpoints) byApp.set(endpoint.app, [...(byApp.get(endpoint.app) ?? []), endpoint]);
  const rules: string[] = [];
  for (const [app, endpoints] of [...byApp].sort(([a], [b]) => a.localeCompare(b))) {
    rules.push(
      ...acceptRule(
        endpoints,
        endpoints.filter((endpoint) => LISTENING.has(endpoint.routingClass)),
        `same app ${app}`,
      ),
    );
  }
  for (const allow of input.allows) {
    if (allow.toClass !== RoutingClass.TCP || allow.fromApp === allow.toApp) continue;
    const from = byApp.get(allow.fromApp) ?? [];
    const to = (byApp.get(allow.toApp) ?? []).filter(
      (endpoint) => endpoint.routingClass === RoutingClass.TCP && (allow.toProcessType === "" || endpoint.processType === allow.toProcessType),
    );
    if (from[0] !== undefined && to[0] !== undefined && from[0].team !== to[0].team) continue;
    rules.push(...acceptRule(from, to, allow.rule));
  }
  return rules;
}

/** DNAT rules: each virtual address is spread at random over its process's ready replicas (kube-proxy's nft mode does the same). */
export function serviceRules(input: Pick<RulesetInput, "endpoints" | "services">): string[] {
  const rules: string[] = [];
  for (const service of [...input.services].sort((a, b) => a.address.localeCompare(b.address))) {
    const ready = input.endpoints
      .filter((endpoint) => endpoint.app === service.app && endpoint.processType === service.processType && endpoint.ready)
      .sort((a, b) => a.address.localeCompare(b.address));
    if (ready.length === 0) continue;
    const label = comment(`${service.app}-${service.processType}`);
    const map = ready.map((endpoint, index) => `${index} : ${endpoint.address} . ${endpoint.port}`).join(", ");
    rules.push(`ip daddr ${service.address} tcp dport ${service.port} dnat ip to numgen random mod ${ready.length} map { ${map} } ${label}`);
  }
  return rules;
}

/**
 * The whole nft script: deletes and recreates berth's table in one
 * transaction (`nft -f` applies it atomically or not at all). Connections
 * already accepted keep flowing: conntrack outlives the table, and the first
 * rule accepts established traffic.
 */
export function renderRuleset(input: RulesetInput): string {
  const { table, bridge, subnet, serviceRange } = input;
  const indent = (lines: string[]) => lines.map((line) => `    ${line}`);
  return [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    "  chain services {",
    ...indent(serviceRules(input)),
    "  }",
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    `    iifname "${bridge}" ip daddr ${serviceRange} jump services`,
    "  }",
    "  chain output_nat {",
    "    type nat hook output priority -100; policy accept;",
    `    ip daddr ${serviceRange} jump services`,
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ip saddr ${subnet} oifname != "${bridge}" masquerade ${comment("egress through NAT")}`,
    "  }",
    "  chain from_containers {",
    "    ct state established,related accept",
    "    ct state invalid drop",
    `    ip daddr != ${subnet} oifname != "${bridge}" accept ${comment("egress")}`,
    ...indent(allowedFlows(input)),
    // An ICMP port-unreachable, not a TCP reset: conntrack translates it back
    // for a connection to a virtual address, so the caller sees "refused" at once.
    `    reject ${comment("default deny")}`,
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    `    iifname "${bridge}" jump from_containers`,
    `    oifname "${bridge}" ct state established,related accept`,
    `    oifname "${bridge}" drop ${comment("nothing from outside opens a connection to a container")}`,
    "  }",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    `    iifname "${bridge}" ct state established,related accept`,
    `    iifname "${bridge}" drop ${comment("containers never reach the platform's own ports")}`,
    "  }",
    "  chain output {",
    "    type filter hook output priority filter; policy accept;",
    // A redirect would teach a container that a peer is on-link and let it bypass the host.
    `    oifname "${bridge}" icmp type redirect drop ${comment("containers always go through the host")}`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/** The script that removes berth's table (nothing when it is absent). */
export function renderTeardown(table: string): string {
  return `table ip ${table}\ndelete table ip ${table}\n`;
}
