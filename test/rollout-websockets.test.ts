import { once } from "node:events";
import test from "ava";
import WebSocket from "ws";
import { RolloutState } from "@berth/proto/type/v1/release";
import { followToEnd, startRolloutPlatform } from "./support/rollout-platform.js";

// A WebSocket server by hand: every socket gets a 100-byte text frame every
// 20 ms, written in two halves 5 ms apart, so the stream is often in the
// middle of a frame. On SIGTERM the app closes the sockets opened on /polite
// with its own close frame (1001) and keeps the others until they are closed
// for it; it exits once none is left.
const WEB = `
const crypto = require("node:crypto");
const http = require("node:http");
const sockets = new Set();
let stopping = false;
const server = http.createServer((request, response) => response.end("ok"));
server.on("upgrade", (request, socket) => {
  const accept = crypto.createHash("sha1").update(request.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: " + accept + "\\r\\n\\r\\n");
  const entry = { socket, polite: request.url === "/polite" };
  sockets.add(entry);
  socket.on("error", () => {});
  socket.on("close", () => {
    clearInterval(entry.timer);
    sockets.delete(entry);
    if (stopping && sockets.size === 0) process.exit(0);
  });
  const payload = Buffer.from("tick ".repeat(20));
  const frame = Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  entry.timer = setInterval(() => {
    if (!socket.writable) return;
    socket.write(frame.subarray(0, 40));
    setTimeout(() => socket.writable && !entry.closing && socket.write(frame.subarray(40)), 5);
  }, 20);
});
server.listen(Number(process.env.PORT));
process.on("SIGTERM", () => {
  stopping = true;
  server.close();
  for (const entry of sockets) {
    if (!entry.polite) continue;
    clearInterval(entry.timer);
    // After the half frame in flight, so that the close frame starts at a frame boundary.
    setTimeout(() => {
      entry.closing = true;
      const reason = Buffer.from("the app says goodbye");
      entry.socket.end(Buffer.concat([Buffer.from([0x88, 2 + reason.length, 0x03, 0xe9]), reason]));
    }, 10);
  }
  if (sockets.size === 0) process.exit(0);
});
`;

interface Closed {
  code: number;
  reason: string;
  at: number;
  messages: number;
  errors: string[];
}

function openSocket(port: number, host: string, path: string): Promise<{ socket: WebSocket; closed: Promise<Closed> }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { Host: host } });
  let messages = 0;
  const errors: string[] = [];
  socket.on("message", (data) => {
    if (String(data) === "tick ".repeat(20)) messages += 1;
    else errors.push(`unexpected message: ${String(data).slice(0, 40)}`);
  });
  socket.on("error", (error) => errors.push(error.message));
  const closed = new Promise<Closed>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now(), messages, errors })),
  );
  return once(socket, "message").then(() => ({ socket, closed }));
}

test("on a rollout the old replica gets SIGTERM while its WebSockets are open: its own close frames reach the client, and at the drain timeout the router closes the rest with 1001", async (t) => {
  const drainTimeoutMs = 2500;
  const platform = await startRolloutPlatform(t, {
    BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: String(drainTimeoutMs),
    BERTH_SCHEDULER_STOP_GRACE_MS: "15000",
    // The router's own setting is a fallback: the scheduler's drain timeout applies.
    BERTH_ROUTER_DRAIN_TIMEOUT_MS: "60000",
  });
  const app = "sockets";
  t.is((await platform.deployApp(app, { "web.js": WEB })).rollout.state, RolloutState.SUCCEEDED);
  const host = platform.hostname(app);
  const polite = await openSocket(platform.proxyPort, host, "/polite");
  const stubborn = await openSocket(platform.proxyPort, host, "/stubborn");
  t.teardown(() => {
    polite.socket.terminate();
    stubborn.socket.terminate();
  });

  const { rollout } = await platform.scheduler.updateConfig({ app, set: { COLOR: "blue" } });
  const rolloutStarted = Date.now();
  const done = await followToEnd(platform.scheduler, app, rollout!.id);
  t.is(done.rollout.state, RolloutState.SUCCEEDED);

  const fromApp = await polite.closed;
  t.is(fromApp.code, 1001);
  t.is(fromApp.reason, "the app says goodbye", "the app's own close frame, sent on SIGTERM while the router kept the tunnel open");
  t.true(fromApp.at - rolloutStarted < drainTimeoutMs, "SIGTERM came before the drain timeout, not after it");
  t.deepEqual(fromApp.errors, []);

  const fromRouter = await stubborn.closed;
  t.is(fromRouter.code, 1001, "a close frame from the router, not a cut connection (1006)");
  t.is(fromRouter.reason, "the replica is shutting down");
  t.deepEqual(fromRouter.errors, [], "every frame arrived whole: the router closed between two frames");
  t.true(fromRouter.messages > 10);
  t.true(fromRouter.at - rolloutStarted >= drainTimeoutMs, "kept open until the scheduler's drain timeout");
  t.true(fromRouter.at - rolloutStarted < 30_000, "the scheduler's drain timeout, not the router's own 60 s");
});
