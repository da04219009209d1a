import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { createInternalClient, servePartial, silentLogger, startServer } from "@berth/kit";
import type { RunningServer, ServerOptions } from "@berth/kit";
import { createGrpcJsClient } from "../../../test/support/grpc-js-client.js";
import { postWithoutEnd } from "../../../test/support/unfinished-post.js";

const TOKEN = "internal-test-token";
const LIMIT = 64 * 1024;
const GET_APP = "/berth.scheduler.v1.SchedulerService/GetApp";
const PARTIAL_BODY = `{"name":"${"a".repeat(1024)}`;

async function start(t: { teardown(fn: () => Promise<void>): void }, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const server = await startServer({
    name: "kit-hostile-test",
    port: 0,
    logger: silentLogger,
    internalToken: TOKEN,
    maxMessageBytes: LIMIT,
    services: [servePartial(SchedulerService, { getApp: (request) => ({ app: { name: request.name.slice(0, 10) } }) })],
    ...options,
  });
  t.teardown(() => server.close(500));
  return server;
}

/** Opens a gRPC call over HTTP/2, sends part of one message and never ends it; resolves with the trailers. */
function grpcWithoutEnd(url: string, headers: Record<string, string> = {}): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": GET_APP, "content-type": "application/grpc", te: "trailers", ...headers });
    let status: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => (status = h));
    stream.on("trailers", (trailers) => {
      session.destroy();
      resolve({ ...status, ...trailers });
    });
    stream.on("error", reject);
    // An envelope announcing 1 MiB of which only 1 KiB ever arrives.
    const envelope = Buffer.alloc(5 + 1024);
    envelope.writeUInt32BE(1024 * 1024, 1);
    stream.write(envelope);
  });
}

test("a call without the internal credential is refused before its body is read (HTTP/1.1 and HTTP/2)", async (t) => {
  const server = await start(t);
  const connect = await postWithoutEnd(`${server.url}${GET_APP}`, { "content-type": "application/json" }, PARTIAL_BODY);
  t.is(connect.status, 401);
  t.is(JSON.parse(connect.body).code, "unauthenticated");
  const wrongToken = await postWithoutEnd(
    `${server.url}${GET_APP}`,
    { "content-type": "application/json", authorization: "Bearer wrong-token-wrong" },
    PARTIAL_BODY,
  );
  t.is(wrongToken.status, 401);
  const viaGrpc = await grpcWithoutEnd(server.url);
  t.is(viaGrpc["grpc-status"], String(Code.Unauthenticated));
});

test("every protocol reads the early refusal as UNAUTHENTICATED", async (t) => {
  const server = await start(t);
  const transports = {
    connectHttp1: createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
    connectHttp2: createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
    grpc: createGrpcTransport({ baseUrl: server.url }),
    grpcWebHttp1: createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    const client = createClient(SchedulerService, transport);
    const unary = await t.throwsAsync(client.getApp({ name: "shop" }));
    t.is(ConnectError.from(unary).code, Code.Unauthenticated, `${name} unary`);
    const stream = await t.throwsAsync(async () => {
      for await (const _ of client.watchEndpoints({})) break;
    });
    t.is(ConnectError.from(stream).code, Code.Unauthenticated, `${name} server stream`);
  }
  const grpcJs = createGrpcJsClient(`127.0.0.1:${server.port}`);
  t.teardown(() => grpcJs.close());
  const error = await t.throwsAsync<grpc.ServiceError>(grpcJs.unary(SchedulerService.method.getApp, { name: "shop" }));
  t.is(error?.code, grpc.status.UNAUTHENTICATED);
  const trusted = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });
  t.is((await trusted.getApp({ name: "shop" })).app?.name, "shop");
});

test("a message over the limit is refused with RESOURCE_EXHAUSTED, compressed or not", async (t) => {
  const server = await start(t);
  const trusted = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });
  const tooLarge = await t.throwsAsync(trusted.getApp({ name: "a".repeat(LIMIT + 1) }));
  t.is(ConnectError.from(tooLarge).code, Code.ResourceExhausted);

  // 16 MiB of JSON in about 16 KiB of gzip: the limit applies to what it expands to.
  const bomb = gzipSync(`{"name":"${"a".repeat(16 * 1024 * 1024)}"}`);
  t.true(bomb.length < LIMIT);
  const response = await fetch(`${server.url}${GET_APP}`, {
    method: "POST",
    headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${TOKEN}` },
    body: bomb,
  });
  t.is(((await response.json()) as { code: string }).code, "resource_exhausted");

  const grpcBomb = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    const session = http2.connect(server.url);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": GET_APP,
      "content-type": "application/grpc",
      "grpc-encoding": "gzip",
      authorization: `Bearer ${TOKEN}`,
    });
    let headers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => (headers = h));
    stream.on("trailers", (trailers) => {
      session.destroy();
      resolve({ ...headers, ...trailers });
    });
    stream.on("error", reject);
    const compressed = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    const envelope = Buffer.alloc(5);
    envelope.writeUInt8(1, 0);
    envelope.writeUInt32BE(compressed.length, 1);
    stream.end(Buffer.concat([envelope, compressed]));
  });
  t.is(grpcBomb["grpc-status"], String(Code.ResourceExhausted));
});

/** One gRPC call over HTTP/2 with a raw body; resolves with the headers and trailers together. */
function rawGrpc(url: string, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", authorization: `Bearer ${TOKEN}`, ...headers });
    let response: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => (response = h));
    stream.on("data", () => {});
    stream.on("end", () => {
      session.destroy();
      resolve(response);
    });
    stream.on("trailers", (trailers) => (response = { ...response, ...trailers }));
    stream.on("error", reject);
    stream.end(body);
  });
}

function envelope(flags: number, data: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

// Field 0 does not exist: an illegal tag for any message.
const GARBAGE = Buffer.from([0x00, 0x07, 0xff]);

test("binary garbage and a compressed message without an encoding are INVALID_ARGUMENT in every protocol", async (t) => {
  const server = await start(t);
  const auth = { authorization: `Bearer ${TOKEN}` };
  const unary = await fetch(`${server.url}${GET_APP}`, { method: "POST", headers: { "content-type": "application/proto", ...auth }, body: GARBAGE });
  t.is(unary.status, 400);
  t.is(((await unary.json()) as { code: string }).code, "invalid_argument");

  t.is((await rawGrpc(server.url, GET_APP, envelope(0, GARBAGE)))["grpc-status"], String(Code.InvalidArgument), "gRPC garbage");
  t.is((await rawGrpc(server.url, GET_APP, envelope(1, GARBAGE)))["grpc-status"], String(Code.InvalidArgument), "gRPC compressed, no encoding");

  const grpcWeb = await fetch(`${server.url}${GET_APP}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", ...auth },
    body: envelope(0, GARBAGE),
  });
  t.regex(Buffer.from(await grpcWeb.arrayBuffer()).toString("latin1"), /grpc-status: ?3\r\n/);

  const stream = await fetch(`${server.url}/berth.scheduler.v1.SchedulerService/WatchEndpoints`, {
    method: "POST",
    headers: { "content-type": "application/connect+proto", ...auth },
    body: envelope(1, GARBAGE),
  });
  const endStream = JSON.parse(
    Buffer.from(await stream.arrayBuffer())
      .subarray(5)
      .toString("utf8"),
  ) as { error: { code: string } };
  t.is(endStream.error.code, "invalid_argument");

  // Well-formed calls still pass.
  const trusted = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });
  t.is((await trusted.getApp({ name: "shop" })).app?.name, "shop");
});

test("a database data exception that no field check caught is INVALID_ARGUMENT, not UNKNOWN", async (t) => {
  const server = await start(t, {
    services: [
      servePartial(SchedulerService, {
        getApp() {
          throw Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: "22021" });
        },
      }),
    ],
  });
  const trusted = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });
  const error = ConnectError.from(await t.throwsAsync(trusted.getApp({ name: "shop" })));
  t.is(error.code, Code.InvalidArgument);
  t.regex(error.rawMessage, /cannot be stored/);
});

test("a full disk is RESOURCE_EXHAUSTED saying so, not UNKNOWN", async (t) => {
  const server = await start(t, {
    services: [
      servePartial(SchedulerService, {
        getApp() {
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
        },
      }),
    ],
  });
  const trusted = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });
  const error = ConnectError.from(await t.throwsAsync(trusted.getApp({ name: "shop" })));
  t.is(error.code, Code.ResourceExhausted);
  t.regex(error.rawMessage, /the platform's disk is full: ENOSPC/);
});
