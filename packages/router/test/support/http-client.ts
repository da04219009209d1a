import * as http from "node:http";
import * as net from "node:net";
import { once } from "node:events";

/** A response read whole. */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Sends one request to the proxy with the given Host header. */
export function request(
  port: number,
  host: string,
  options: { path?: string; method?: string; body?: string | Buffer; headers?: http.OutgoingHttpHeaders; agent?: http.Agent } = {},
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        host: "127.0.0.1",
        port,
        path: options.path ?? "/",
        method: options.method ?? "GET",
        headers: { host, ...options.headers },
        agent: options.agent ?? false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() }));
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

/** Opens an upgraded (WebSocket-style) connection through the proxy. */
export async function openUpgrade(port: number, host: string): Promise<{ socket: net.Socket; headers: http.IncomingHttpHeaders }> {
  const outgoing = http.request({
    host: "127.0.0.1",
    port,
    path: "/socket",
    headers: { host, connection: "Upgrade", upgrade: "websocket" },
    agent: false,
  });
  outgoing.end();
  const [response, socket] = (await once(outgoing, "upgrade")) as [http.IncomingMessage, net.Socket];
  return { socket, headers: response.headers };
}

/** Writes `text` on an upgraded connection and waits for the same bytes to come back. */
export async function echo(socket: net.Socket, text: string): Promise<string> {
  socket.write(text);
  let received = "";
  while (received.length < text.length) {
    const [chunk] = (await once(socket, "data")) as [Buffer];
    received += chunk.toString();
  }
  return received;
}

/** Sends raw bytes on a new connection and collects everything until the proxy closes it. */
export async function rawExchange(port: number, bytes: string): Promise<string> {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.write(bytes);
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  await once(socket, "close");
  return Buffer.concat(chunks).toString("latin1");
}
