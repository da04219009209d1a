import test from "ava";
import * as http from "node:http";
import { once } from "node:events";
import * as net from "node:net";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { startTestDataPlane } from "./support/data-plane.js";
import { echo, openUpgrade, rawExchange, request } from "./support/http-client.js";
import { closedPort, startUpstream } from "./support/upstream.js";

test("routes by host to the web process and each *-web process, with X-Forwarded-* headers", async (t) => {
  const web = await startUpstream("web-1");
  const admin = await startUpstream("admin-1");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await web.close();
    await admin.close();
  });
  plane.setEndpoints("web", [web.endpoint()]);
  plane.setEndpoints("admin-web", [admin.endpoint()]);

  t.is((await request(plane.httpPort, "shop.berth.localhost", { path: "/a" })).body, "web-1 GET /a");
  t.is((await request(plane.httpPort, "SHOP-admin.berth.localhost:8000", { path: "/b" })).body, "admin-1 GET /b");

  const echoed = JSON.parse(
    (await request(plane.httpPort, "shop.berth.localhost", { path: "/headers", headers: { "x-forwarded-for": "10.0.0.9", "x-forwarded-proto": "https" } }))
      .body,
  ) as Record<string, string>;
  t.is(echoed["x-forwarded-for"], "10.0.0.9, 127.0.0.1");
  t.is(echoed["x-forwarded-proto"], "http", "a client cannot choose the forwarded scheme");
  t.is(echoed["x-forwarded-host"], "shop.berth.localhost");
  t.is(echoed["x-forwarded-port"], String(plane.httpPort));
  t.is(echoed.host, "shop.berth.localhost");
});

test("an unknown host gets a clear 404 page, a worker process is never routed", async (t) => {
  const worker = await startUpstream("worker-1");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await worker.close();
  });
  plane.applyEndpoints(
    [{ team: "acme", app: "shop", processType: "worker", routingClass: RoutingClass.WORKER, endpoints: [worker.endpoint()], removed: false }],
    false,
  );
  const response = await request(plane.httpPort, "nothing.berth.localhost");
  t.is(response.status, 404);
  t.regex(response.body, /No app is served at nothing\.berth\.localhost/);
  t.is((await request(plane.httpPort, "shop-worker.berth.localhost")).status, 404);
  t.is(worker.requests.length, 0);
});

test("a process without a healthy replica answers 503 once the wait is over", async (t) => {
  const plane = await startTestDataPlane({ replicaWaitMs: 200 });
  t.teardown(() => plane.close());
  plane.setEndpoints("web", []);
  const response = await request(plane.httpPort, "shop.berth.localhost");
  t.is(response.status, 503);
  t.is(response.headers["retry-after"], "5");
  t.regex(response.body, /web process of shop has no healthy replica/);
});

test("a request waits for a replica to become healthy instead of failing", async (t) => {
  const web = await startUpstream("web-1");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await web.close();
  });
  plane.setEndpoints("web", []);
  let settled = false;
  const pending = request(plane.httpPort, "shop.berth.localhost", { path: "/waited" }).finally(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(settled, "the request is still waiting while no replica is healthy");
  plane.setEndpoints("web", [web.endpoint()]);
  const response = await pending;
  t.is(response.status, 200);
  t.is(response.body, "web-1 GET /waited");
});

test("a replica that refuses connections is skipped and the request retried on another", async (t) => {
  const web = await startUpstream("web-1");
  const gonePort = await closedPort();
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await web.close();
  });
  plane.setEndpoints("web", [{ replica: "gone", host: "127.0.0.1", port: gonePort }, web.endpoint()]);
  for (let i = 0; i < 20; i++) {
    const response = await request(plane.httpPort, "shop.berth.localhost", { method: "POST", body: `n=${i}` });
    t.is(response.status, 200);
    t.is(response.body, `web-1 POST / n=${i}`);
  }
});

test("request bodies, chunked requests and chunked responses go through intact on kept-alive connections", async (t) => {
  const web = await startUpstream("web-1");
  const plane = await startTestDataPlane();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await plane.close();
    await web.close();
  });
  plane.setEndpoints("web", [web.endpoint()]);
  const big = "x".repeat(1_000_000);
  t.is((await request(plane.httpPort, "shop.berth.localhost", { method: "PUT", body: big, agent })).body, `web-1 PUT / ${big}`);
  const chunked = await new Promise<string>((resolve, reject) => {
    const outgoing = http.request(
      { host: "127.0.0.1", port: plane.httpPort, method: "POST", path: "/c", headers: { host: "shop.berth.localhost" }, agent },
      (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString()));
        response.on("end", () => resolve(body));
      },
    );
    outgoing.on("error", reject);
    outgoing.write("first,");
    setTimeout(() => outgoing.end("second"), 20);
  });
  t.is(chunked, "web-1 POST /c first,second");
  const streamed = await request(plane.httpPort, "shop.berth.localhost", { path: "/chunked", agent });
  t.is(streamed.headers["transfer-encoding"], "chunked");
  t.is(streamed.body, "web-1 part one\nweb-1 part two\n");
  const head = await request(plane.httpPort, "shop.berth.localhost", { method: "HEAD", agent });
  t.is(head.status, 200);
  t.is((await request(plane.httpPort, "shop.berth.localhost", { path: "/after-head", agent })).body, "web-1 GET /after-head");
  t.is(web.requests.map((r) => r.socket).filter((socket, index, all) => all.indexOf(socket) === index).length, 1, "one kept-alive upstream connection");
});

test("pipelined requests are answered in order and malformed heads are refused", async (t) => {
  const web = await startUpstream("web-1");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await web.close();
  });
  plane.setEndpoints("web", [web.endpoint()]);
  const pipelined = await rawExchange(
    plane.httpPort,
    "GET /one HTTP/1.1\r\nHost: shop.berth.localhost\r\n\r\nPOST /two HTTP/1.1\r\nHost: shop.berth.localhost\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: shop.berth.localhost\r\nConnection: close\r\n\r\n",
  );
  const bodies = [...pipelined.matchAll(/web-1 [A-Z]+ \/[a-z]+[^H]*/g)].map((match) => match[0].trim());
  t.deepEqual(bodies, ["web-1 GET /one", "web-1 POST /two abc", "web-1 GET /three"]);
  t.regex(await rawExchange(plane.httpPort, "GET / HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 400 /);
  t.regex(
    await rawExchange(plane.httpPort, "POST / HTTP/1.1\r\nHost: shop.berth.localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    /^HTTP\/1\.1 400 /,
  );
  t.regex(await rawExchange(plane.httpPort, `GET / HTTP/1.1\r\nHost: shop.berth.localhost\r\nX-Big: ${"a".repeat(70_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
});

test("WebSocket upgrades are tunnelled to the replica", async (t) => {
  const web = await startUpstream("web-1");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await web.close();
  });
  plane.setEndpoints("web", [web.endpoint()]);
  const { socket, headers } = await openUpgrade(plane.httpPort, "shop.berth.localhost");
  t.teardown(() => socket.destroy());
  t.is(headers["x-replica"], "web-1");
  t.is(await echo(socket, "hello over the tunnel"), "hello over the tunnel");
});

test("a removed replica keeps its open WebSocket and is reported drained at once, so that it can be told to stop and close it itself", async (t) => {
  const first = await startUpstream("web-1");
  const second = await startUpstream("web-2");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await first.close();
    await second.close();
  });
  plane.setEndpoints("web", [first.endpoint()]);
  const { socket } = await openUpgrade(plane.httpPort, "shop.berth.localhost");
  plane.setEndpoints("web", [second.endpoint()]);
  t.deepEqual(plane.draining(), ["web-1"]);
  t.deepEqual(plane.drained, ["web-1"], "only a WebSocket is left: nothing in flight keeps the replica from its SIGTERM");
  t.is(await echo(socket, "still here"), "still here", "the WebSocket survives the route change");
  t.is((await request(plane.httpPort, "shop.berth.localhost")).body, "web-2 GET /", "new requests go to the new replica");
  socket.end();
  await once(socket, "close");
  while (plane.draining().length > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(plane.drained, ["web-1"], "reported once");
});

test("a draining replica's WebSockets end with a 1001 close frame when the drain timeout passes", async (t) => {
  const first = await startUpstream("web-1");
  const plane = await startTestDataPlane({ drainTimeoutMs: 300 });
  t.teardown(async () => {
    await plane.close();
    await first.close();
  });
  plane.setEndpoints("web", [first.endpoint()]);
  const { socket } = await openUpgrade(plane.httpPort, "shop.berth.localhost");
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  plane.setEndpoints("web", []);
  await once(socket, "close");
  const closing = Buffer.concat(received);
  t.is(closing[0], 0x88, "a close frame");
  t.is(closing.readUInt16BE(2), 1001, "going away");
  while (plane.drained.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(plane.drained, ["web-1"]);
});

test("a replica removed while it never had a connection is reported drained at once", async (t) => {
  const plane = await startTestDataPlane();
  t.teardown(() => plane.close());
  plane.setEndpoints("web", [{ replica: "idle", host: "127.0.0.1", port: 1 }]);
  plane.setEndpoints("web", []);
  t.deepEqual(plane.drained, ["idle"]);
});

test("route changes under steady load fail no request", async (t) => {
  const replicas = await Promise.all(["r1", "r2", "r3", "r4"].map((name) => startUpstream(name)));
  const plane = await startTestDataPlane();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(async () => {
    agent.destroy();
    await plane.close();
    await Promise.all(replicas.map((replica) => replica.close()));
  });
  plane.setEndpoints("web", [replicas[0]!.endpoint()]);
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (!stop) {
      try {
        const response = await request(plane.httpPort, "shop.berth.localhost", { path: "/slow/5", agent });
        if (response.status === 200) ok++;
        else failures.push(`status ${response.status}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  // A rolling replacement: the new replica joins, the old one leaves and is
  // closed only once the proxy reports it drained, as the scheduler does.
  for (let i = 1; i < replicas.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    plane.setEndpoints("web", [replicas[i - 1]!.endpoint(), replicas[i]!.endpoint()]);
    await new Promise((resolve) => setTimeout(resolve, 150));
    plane.setEndpoints("web", [replicas[i]!.endpoint()]);
    while (!plane.drained.includes(replicas[i - 1]!.name)) await new Promise((resolve) => setTimeout(resolve, 5));
    await replicas[i - 1]!.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 150));
  stop = true;
  await Promise.all(workers);
  t.deepEqual(failures, []);
  t.true(ok > 50);
  t.deepEqual(plane.drained, ["r1", "r2", "r3"]);
});

test("plain HTTP redirects to HTTPS when configured, but ACME challenges are always answered", async (t) => {
  const web = await startUpstream("web-1");
  const plane = await startTestDataPlane({
    redirectHttps: true,
    publicHttpsPort: 443,
    answerChallenge: async (token) => (token === "tok123" ? "tok123.thumbprint" : undefined),
  });
  t.teardown(async () => {
    await plane.close();
    await web.close();
  });
  plane.setEndpoints("web", [web.endpoint()]);
  const redirect = await request(plane.httpPort, "shop.berth.localhost", { path: "/path?q=1" });
  t.is(redirect.status, 308);
  t.is(redirect.headers.location, "https://shop.berth.localhost/path?q=1");
  const challenge = await request(plane.httpPort, "anything.example.com", { path: "/.well-known/acme-challenge/tok123" });
  t.is(challenge.status, 200);
  t.is(challenge.body, "tok123.thumbprint");
  t.is((await request(plane.httpPort, "shop.berth.localhost", { path: "/.well-known/acme-challenge/nope" })).status, 404);
  t.is(web.requests.length, 0);
});

test("a replica dying mid-response truncates only that response; HTTP/1.0 clients are answered and closed", async (t) => {
  const web = await startUpstream("web-1");
  const dying = net.createServer((socket) => {
    socket.once("data", () => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
      setImmediate(() => socket.destroy());
    });
  });
  dying.listen(0, "127.0.0.1");
  await once(dying, "listening");
  const plane = await startTestDataPlane();
  t.teardown(async () => {
    await plane.close();
    await web.close();
    await new Promise<void>((resolve) => dying.close(() => resolve()));
  });
  plane.setEndpoints("admin-web", [{ replica: "dying", host: "127.0.0.1", port: (dying.address() as net.AddressInfo).port }]);
  plane.setEndpoints("web", [web.endpoint()]);
  await t.throwsAsync(request(plane.httpPort, "shop-admin.berth.localhost"), undefined, "the client sees the response cut short");
  t.is((await request(plane.httpPort, "shop.berth.localhost")).body, "web-1 GET /", "other traffic is unaffected");
  const http10 = await rawExchange(plane.httpPort, "GET /old HTTP/1.0\r\nHost: shop.berth.localhost\r\n\r\n");
  t.regex(http10, /^HTTP\/1\.1 200 OK/);
  t.true(http10.endsWith("web-1 GET /old"));
});
