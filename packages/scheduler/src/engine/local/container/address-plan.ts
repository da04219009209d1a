/**
 * How the private subnet (BERTH_LOCAL_SUBNET) is split: the bridge's own
 * address first, replica addresses in the lower half, the stable virtual
 * addresses of tcp processes in the upper half. Pure functions.
 */

/** A parsed IPv4 subnet. */
export interface Subnet {
  /** The network address as a 32-bit number. */
  network: number;
  prefix: number;
}

/** The smallest subnet that still leaves room for a useful number of replicas and services. */
const MAX_PREFIX = 24;

export function ipToNumber(ip: string): number | undefined {
  const parts = ip.split(".");
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part) || Number(part) > 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

export function numberToIp(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** Parses `a.b.c.d/n`; an error message names what is wrong (the caller adds the variable's name). */
export function parseSubnet(text: string): Subnet | string {
  const match = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  const address = match ? ipToNumber(match[1]!) : undefined;
  if (!match || address === undefined) return `"${text}" is not an IPv4 subnet like 10.88.0.0/16`;
  const prefix = Number(match[2]);
  if (prefix < 8 || prefix > MAX_PREFIX) return `"${text}": the prefix must be between /8 and /${MAX_PREFIX}`;
  const size = 2 ** (32 - prefix);
  if (address % size !== 0) return `"${text}" has host bits set; the network is ${numberToIp(address - (address % size))}/${prefix}`;
  return { network: address, prefix };
}

export function subnetText(subnet: Subnet): string {
  return `${numberToIp(subnet.network)}/${subnet.prefix}`;
}

function size(subnet: Subnet): number {
  return 2 ** (32 - subnet.prefix);
}

/** The bridge's address: the containers' gateway, and the source of the router's and health checks' connections. */
export function gatewayAddress(subnet: Subnet): string {
  return numberToIp(subnet.network + 1);
}

/** The upper half, where tcp processes' virtual addresses live, as `a.b.c.d/n`. */
export function serviceRange(subnet: Subnet): string {
  return `${numberToIp(subnet.network + size(subnet) / 2)}/${subnet.prefix + 1}`;
}

/** The first free replica address (lower half, after the gateway), or undefined when the half is full. */
export function nextReplicaAddress(subnet: Subnet, used: ReadonlySet<string>): string | undefined {
  for (let offset = 2; offset < size(subnet) / 2; offset += 1) {
    const ip = numberToIp(subnet.network + offset);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

/** The first free virtual address (upper half, without its broadcast address), or undefined when full. */
export function nextServiceAddress(subnet: Subnet, used: ReadonlySet<string>): string | undefined {
  for (let offset = size(subnet) / 2 + 1; offset < size(subnet) - 1; offset += 1) {
    const ip = numberToIp(subnet.network + offset);
    if (!used.has(ip)) return ip;
  }
  return undefined;
}
