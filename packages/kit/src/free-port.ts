import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Ports are picked below the kernel's ephemeral range: a port `listen(0)`
 * hands out comes from that range, where the kernel may take it as the
 * source port of any outgoing connection before our own listener binds it
 * (seen: a platform's services failing to start with EADDRINUSE on a port
 * that one of them had just connected from).
 */
const LOWEST = 10_000;
const HIGHEST_DEFAULT = 20_000;

function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    const start = Number(low);
    return Number.isInteger(start) && start > LOWEST ? start : HIGHEST_DEFAULT;
  } catch {
    return HIGHEST_DEFAULT;
  }
}

const highest = Math.min(HIGHEST_DEFAULT, ephemeralRangeStart());

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A TCP port that was free on `host` a moment ago, outside the kernel's ephemeral range. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST));
    if (await bindable(port, host)) return port;
  }
  throw new Error(`no free TCP port on ${host} between ${LOWEST} and ${highest}`);
}
