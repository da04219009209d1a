import { execFile } from "node:child_process";
import { promisify } from "node:util";
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@berth/proto/grpc/health/v1/health";
import { createInternalClient, createLogger, fieldViolationsOf, invalidArgument, servePartial, silentLogger, startServer } from "@berth/kit";
import type { RunningServer, ServerOptions } from "@berth/kit";
import { createGrpcJsClient } from "../../../test/support/grpc-js-client.js";

const run = promisify(execFile);
const TOKEN = "internal-test-token";

function schedulerStandIn(delayMs = 0, onCall: () => void = () => {}) {
  return servePartial(SchedulerService, {
    async listPodSizes() {
      onCall();
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      return { sizes: [{ name: "standard-1x", cpuMillis: 250, memoryMb: 512 }] };
    },
    getApp(request) {
      throw invalidArgument("name", `"${request.name}" is not a DNS label`);
    },
  });
}

async function start(t: { teardown(fn: () => Promise<void>): void }, options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const server = await startServer({ name: "kit-test", port: 0, services: [schedulerStandIn()], logger: silentLogger, ...options });
  t.teardown(() => server.close(1000));
  return server;
}

test("one RPC answers the same over Connect/HTTP1.1, gRPC (connect-node), gRPC-Web and grpc-js", async (t) => {
  const server = await start(t);
  const transports = {
    connectHttp1: createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
    grpcConnectNode: createGrpcTransport({ baseUrl: server.url }),
    grpcWebHttp1: createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    const response = await createClient(SchedulerService, transport).listPodSizes({});
    t.deepEqual(
      response.sizes.map((s) => [s.name, s.cpuMillis, s.memoryMb]),
      [["standard-1x", 250, 512]],
      name,
    );
  }
  const grpcJs = createGrpcJsClient(`127.0.0.1:${server.port}`);
  t.teardown(() => grpcJs.close());
  const viaGrpcJs = await grpcJs.unary(SchedulerService.method.listPodSizes, {});
  t.deepEqual(
    viaGrpcJs.sizes.map((s) => [s.name, s.cpuMillis, s.memoryMb]),
    [["standard-1x", 250, 512]],
  );
});

test("unimplemented methods answer UNIMPLEMENTED", async (t) => {
  const server = await start(t);
  const client = createClient(SchedulerService, createGrpcTransport({ baseUrl: server.url }));
  const error = await t.throwsAsync(client.listApps({}));
  t.is(ConnectError.from(error).code, Code.Unimplemented);
});

test("INVALID_ARGUMENT carries the field in a BadRequest detail over the wire", async (t) => {
  const server = await start(t);
  const client = createClient(SchedulerService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
  const error = await t.throwsAsync(client.getApp({ name: "Bad Name" }));
  t.is(ConnectError.from(error).code, Code.InvalidArgument);
  t.deepEqual(fieldViolationsOf(error), [{ field: "name", description: '"Bad Name" is not a DNS label' }]);
});

test("the internal credential is required, health and reflection stay open", async (t) => {
  const server = await start(t, { internalToken: TOKEN });
  const anonymous = createClient(SchedulerService, createGrpcTransport({ baseUrl: server.url }));
  const refused = await t.throwsAsync(anonymous.listPodSizes({}));
  t.is(ConnectError.from(refused).code, Code.Unauthenticated);
  const wrong = createInternalClient(SchedulerService, { baseUrl: server.url, token: "wrong" });
  t.is(ConnectError.from(await t.throwsAsync(wrong.listPodSizes({}))).code, Code.Unauthenticated);
  const trusted = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });
  t.is((await trusted.listPodSizes({})).sizes.length, 1);
  const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  t.is((await health.check({ service: "" })).status, Status.SERVING);
});

test("health answers per service, NOT_FOUND for unknown ones, and Watch streams changes", async (t) => {
  const server = await start(t);
  const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  t.is((await health.check({ service: SchedulerService.typeName })).status, Status.SERVING);
  const unknown = await t.throwsAsync(health.check({ service: "nope.Service" }));
  t.is(ConnectError.from(unknown).code, Code.NotFound);
  const abort = new AbortController();
  const seen: Status[] = [];
  const stream = health.watch({ service: SchedulerService.typeName }, { signal: abort.signal });
  for await (const update of stream) {
    seen.push(update.status);
    if (seen.length === 1) server.health.set(SchedulerService.typeName, false);
    if (seen.length === 2) break;
  }
  abort.abort();
  t.deepEqual(seen, [Status.SERVING, Status.NOT_SERVING]);
});

test("buf curl lists and calls services through gRPC reflection (v1 and v1alpha)", async (t) => {
  const server = await start(t);
  const bufCurl = (...args: string[]) => run("npx", ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect", ...args]);
  for (const reflectProtocol of ["grpc-v1", "grpc-v1alpha"]) {
    const { stdout } = await bufCurl("--reflect-protocol", reflectProtocol, "--list-services", server.url);
    const services = stdout.trim().split("\n");
    t.true(services.includes(SchedulerService.typeName), reflectProtocol);
    t.true(services.includes("grpc.health.v1.Health"), reflectProtocol);
  }
  const { stdout: methods } = await bufCurl("--list-methods", server.url);
  t.true(methods.includes("berth.scheduler.v1.SchedulerService/WatchEndpoints"));
  const { stdout: called } = await bufCurl("-d", "{}", `${server.url}/berth.scheduler.v1.SchedulerService/ListPodSizes`);
  t.like(JSON.parse(called), { sizes: [{ name: "standard-1x", cpuMillis: 250, memoryMb: 512 }] });
});

test("metrics count calls by method and code at /metrics", async (t) => {
  const server = await start(t);
  const client = createClient(SchedulerService, createGrpcTransport({ baseUrl: server.url }));
  await client.listPodSizes({});
  await t.throwsAsync(client.getApp({ name: "x" }));
  const text = await (await fetch(`${server.url}/metrics`)).text();
  t.regex(text, /grpc_server_handled_total\{[^}]*grpc_method="ListPodSizes"[^}]*grpc_code="OK"[^}]*\} 1/);
  t.regex(text, /grpc_server_handled_total\{[^}]*grpc_method="GetApp"[^}]*grpc_code="InvalidArgument"[^}]*\} 1/);
  t.regex(text, /grpc_server_handling_seconds_bucket/);
});

test("CORS lets an allowed browser origin call with Connect and refuses others", async (t) => {
  const server = await start(t, { cors: { allowedOrigins: ["http://console.berth.localhost"] } });
  const preflight = await fetch(`${server.url}/berth.scheduler.v1.SchedulerService/ListPodSizes`, {
    method: "OPTIONS",
    headers: {
      origin: "http://console.berth.localhost",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,connect-protocol-version",
    },
  });
  t.is(preflight.status, 204);
  t.is(preflight.headers.get("access-control-allow-origin"), "http://console.berth.localhost");
  t.regex(preflight.headers.get("access-control-allow-headers") ?? "", /Connect-Protocol-Version/i);
  const call = await fetch(`${server.url}/berth.scheduler.v1.SchedulerService/ListPodSizes`, {
    method: "POST",
    headers: { origin: "http://evil.example", "content-type": "application/json", "connect-protocol-version": "1" },
    body: "{}",
  });
  t.is(call.status, 200);
  t.is(call.headers.get("access-control-allow-origin"), null);
});

test("graceful close finishes in-flight unary calls and ends streams", async (t) => {
  let handlerStarted: () => void = () => {};
  const callArrived = new Promise<void>((resolve) => (handlerStarted = resolve));
  const server = await startServer({ name: "kit-test", port: 0, services: [schedulerStandIn(300, () => handlerStarted())], logger: silentLogger });
  const client = createClient(SchedulerService, createGrpcTransport({ baseUrl: server.url }));
  const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  const watched: Status[] = [];
  let firstUpdate: () => void = () => {};
  const watchOpen = new Promise<void>((resolve) => (firstUpdate = resolve));
  const watching = (async () => {
    for await (const update of health.watch({ service: "" })) {
      watched.push(update.status);
      firstUpdate();
    }
  })();
  await watchOpen;
  const inFlight = client.listPodSizes({});
  await callArrived;
  await server.close(5000);
  t.is((await inFlight).sizes.length, 1);
  await watching;
  t.is(watched[0], Status.SERVING);
  const refused = await t.throwsAsync(createClient(SchedulerService, createGrpcTransport({ baseUrl: server.url })).listPodSizes({}));
  t.is(ConnectError.from(refused).code, Code.Unavailable);
});

test("grpc-js sees UNAUTHENTICATED as a plain gRPC status", async (t) => {
  const server = await start(t, { internalToken: TOKEN });
  const client = createGrpcJsClient(`127.0.0.1:${server.port}`);
  t.teardown(() => client.close());
  const error = await t.throwsAsync<grpc.ServiceError>(client.unary(SchedulerService.method.listPodSizes, {}));
  t.is(error?.code, grpc.status.UNAUTHENTICATED);
  const ok = await client.unary(SchedulerService.method.listPodSizes, {}, { authorization: `Bearer ${TOKEN}` });
  t.is(ok.sizes.length, 1);
});

test("a server stream whose client leaves while it is being written is not logged as a failure", async (t) => {
  const lines: string[] = [];
  let streaming!: () => void;
  const started = new Promise<void>((resolve) => (streaming = resolve));
  const server = await startServer({
    name: "kit-test",
    port: 0,
    logger: createLogger("kit-test", { level: "warn", write: (line) => lines.push(line) }),
    services: [
      servePartial(SchedulerService, {
        async *streamLogs() {
          streaming();
          // Large messages without pause: the client leaves while one is being written.
          for (;;) yield { line: { text: "x".repeat(64 * 1024) } };
        },
      }),
    ],
  });
  t.teardown(() => server.close(1000));
  const client = createClient(SchedulerService, createGrpcTransport({ baseUrl: server.url }));
  const leaving = new AbortController();
  const reading = (async () => {
    for await (const _ of client.streamLogs({ app: "shop" }, { signal: leaving.signal })) await new Promise((resolve) => setTimeout(resolve, 5));
  })();
  await started;
  await new Promise((resolve) => setTimeout(resolve, 200));
  leaving.abort();
  await t.throwsAsync(reading);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.deepEqual(
    lines.filter((line) => line.includes("rpc failed")),
    [],
  );
});
