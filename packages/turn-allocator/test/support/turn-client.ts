import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import * as net from "node:net";
import * as tls from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { turnPassword } from "@berth/kit";

/** What turnutils_uclient reported. */
export interface UclientResult {
  ok: boolean;
  output: string;
}

/**
 * Allocates through a TURN server with turnutils_uclient (coturn's own
 * client) in client-to-client mode: two relayed allocations exchange
 * `messages` packets `intervalMs` apart (no RTCP allocations, `-c`). ok means allocation and every
 * round trip worked.
 */
export function uclient(
  port: number,
  username: string,
  password: string,
  options: { messages?: number; intervalMs?: number; tls?: boolean } = {},
): Promise<UclientResult> {
  const args = [
    // turns: over TCP (uclient does not check the certificate; tlsPeerCertificate does).
    ...(options.tls ? ["-t", "-S"] : []),
    "-y",
    "-c",
    "-n",
    String(options.messages ?? 1),
    "-m",
    "1",
    "-z",
    String(options.intervalMs ?? 20),
    "-u",
    username,
    "-w",
    password,
    "-p",
    String(port),
    "127.0.0.1",
  ];
  return new Promise((resolve) => {
    execFile("turnutils_uclient", args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const output = stdout + stderr;
      resolve({ ok: error === null && !/ERROR/.test(output), output });
    });
  });
}

/** TURN REST API credentials signed with `secret`, expiring `ttlSeconds` from now (negative: already expired). */
export function signedCredentials(secret: string, user: string, ttlSeconds: number): { username: string; password: string } {
  const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${user}`;
  return { username, password: turnPassword(secret, username) };
}

/** Waits until something accepts TCP connections on 127.0.0.1:port, or says whether it ever did. */
export async function waitForListening(port: number, listening = true, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (accepted === listening) return true;
    await sleep(100);
  }
  return false;
}

async function portFree(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => resolve(false));
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

/** `size` consecutive ports free on 127.0.0.1 for TCP and UDP right now, from a random place (tests never use fixed ports). */
export async function freePortBlock(size: number): Promise<{ first: number; last: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * 10_000);
    let free = true;
    for (let port = first; port < first + size && free; port++) free = await portFree(port);
    if (free) return { first, last: first + size - 1 };
  }
  throw new Error(`no ${size} consecutive free ports found`);
}

/**
 * The certificate a gateway presents for `servername` on a TLS connection to
 * its port, verified against `ca` and the name (rejects otherwise).
 */
export function tlsPeerCertificate(port: number, servername: string, ca: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca }, () => {
      const certificate = socket.getPeerCertificate();
      socket.destroy();
      resolve(certificate);
    });
    socket.on("error", reject);
  });
}
