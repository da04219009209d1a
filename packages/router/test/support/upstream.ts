import * as http from "node:http";
import type * as net from "node:net";
import { once } from "node:events";

/** A real HTTP server standing in for one replica of an app. */
export interface TestUpstream {
  readonly name: string;
  readonly port: number;
  /** Requests received so far. */
  readonly requests: http.IncomingMessage[];
  /** The endpoint as the scheduler would stream it. */
  endpoint(): { replica: string; host: string; port: number };
  close(): Promise<void>;
}

/**
 * Starts an upstream that answers `<name> <method> <url>` plus the request
 * body, echoes request headers back as JSON on /headers, and accepts
 * WebSocket-style upgrades by echoing every byte back.
 */
export async function startUpstream(name: string): Promise<TestUpstream> {
  const requests: http.IncomingMessage[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer(async (request, response) => {
    requests.push(request);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (request.url === "/headers") {
      response.setHeader("content-type", "application/json");
      response.end(JSON.stringify(request.headers));
      return;
    }
    if (request.url === "/chunked") {
      response.write(`${name} part one\n`);
      setImmediate(() => response.end(`${name} part two\n`));
      return;
    }
    if (request.url?.startsWith("/slow/")) {
      const ms = Number(request.url.slice("/slow/".length));
      setTimeout(() => response.end(`${name} slow`), ms);
      return;
    }
    response.setHeader("x-replica", name);
    response.end(`${name} ${request.method} ${request.url} ${body.length > 0 ? body.toString("latin1") : ""}`.trimEnd());
  });
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("upgrade", (request: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${request.headers.upgrade}\r\nConnection: Upgrade\r\nx-replica: ${name}\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.on("data", (chunk) => socket.write(chunk));
    socket.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  return {
    name,
    port,
    requests,
    endpoint: () => ({ replica: name, host: "127.0.0.1", port }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
