/**
 * Router data-plane benchmark: requests/s and p99 of the same upstream hit
 * directly, through the berth proxy and through nginx (from Debian), in one
 * run; then the requests that fail while the route table changes under load.
 *
 *   npx tsx bench/router-proxy.ts [seconds per run, default 5] [connections, default 50]
 *
 * Every party runs in its own process (this file, in different roles) so that
 * they compete for the CPU as they would on a real host.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const HOST = "app.berth.localhost";
const self = fileURLToPath(import.meta.url);

interface LoadResult {
  rps: number;
  p99: number;
  ok: number;
  failed: number;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

// ---- role: upstream ----

function runUpstream(port: number): void {
  const body = Buffer.from("hello from the app\n");
  http
    .createServer((_request, response) => {
      response.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
      response.end(body);
    })
    .listen(port, "127.0.0.1", () => process.send?.("ready"));
}

// ---- role: proxy (the berth data plane, fed endpoint changes over IPC) ----

async function runProxy(port: number, upstreamPorts: number[]): Promise<void> {
  const { silentLogger } = await import("@berth/kit");
  const { RoutingClass } = await import("@berth/proto/type/v1/process");
  const { createRouteTable } = await import("../packages/router/src/route-table.js");
  const { startDataPlane } = await import("../packages/router/src/proxy/data-plane.js");
  const routes = createRouteTable("berth.localhost");
  const plane = await startDataPlane({
    routes,
    host: "127.0.0.1",
    httpPort: port,
    redirectHttps: false,
    replicaWaitMs: 30_000,
    drainTimeoutMs: 30_000,
    answerChallenge: async () => undefined,
    onDrained: () => {},
    logger: silentLogger,
  });
  const endpoints = (indexes: number[]) => indexes.map((index) => ({ replica: `r${index}`, host: "127.0.0.1", port: upstreamPorts[index]! }));
  const apply = (indexes: number[]) =>
    plane.applyEndpoints(
      [{ team: "bench", app: "app", processType: "web", routingClass: RoutingClass.WEB, endpoints: endpoints(indexes), removed: false }],
      false,
    );
  apply([0]);
  process.on("message", (message: { endpoints: number[] }) => apply(message.endpoints));
  process.send?.("ready");
}

// ---- role: load generator (raw keep-alive connections, reconnecting when closed) ----

function runLoad(port: number, connections: number, seconds: number): void {
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const deadline = Date.now() + seconds * 1000;
  const connect = () => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let pending = "";
    let started = 0n;
    let inFlight = false;
    const send = () => {
      if (Date.now() >= deadline) return socket.end();
      started = process.hrtime.bigint();
      inFlight = true;
      socket.write(request);
    };
    socket.on("connect", send);
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.toString("latin1");
      for (;;) {
        const headEnd = pending.indexOf("\r\n\r\n");
        if (headEnd < 0) return;
        const length = /content-length: *(\d+)/i.exec(pending.slice(0, headEnd));
        const total = headEnd + 4 + (length ? Number(length[1]) : 0);
        if (pending.length < total) return;
        if (pending.startsWith("HTTP/1.1 200")) ok++;
        else failed++;
        const closing = /\r\nconnection: *close/i.test(pending.slice(0, headEnd));
        pending = pending.slice(total);
        inFlight = false;
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        // A server ending the connection (nginx after keepalive_requests) is not a failure.
        if (!closing) send();
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      if (inFlight) failed++;
      if (Date.now() < deadline) connect();
    });
  };
  for (let i = 0; i < connections; i++) connect();
  setTimeout(
    () => {
      latencies.sort((a, b) => a - b);
      const result: LoadResult = { rps: Math.round(ok / seconds), p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, ok, failed };
      process.send?.(result);
      process.exit(0);
    },
    seconds * 1000 + 1000,
  );
}

// ---- orchestration ----

function child(role: string, args: (string | number)[]): ChildProcess {
  return spawn(process.execPath, ["--import=tsx", self, role, ...args.map(String)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

async function ready(process: ChildProcess): Promise<void> {
  const [message] = await once(process, "message");
  if (message !== "ready") throw new Error(`unexpected message ${JSON.stringify(message)}`);
}

async function load(port: number, connections: number, seconds: number, during?: (signal: AbortSignal) => Promise<void>): Promise<LoadResult> {
  const generator = child("load", [port, connections, seconds]);
  const result = once(generator, "message") as Promise<[LoadResult]>;
  const controller = new AbortController();
  const side = during?.(controller.signal);
  const [value] = await result;
  controller.abort();
  await side;
  return value;
}

function writeNginxConfig(directory: string, port: number, upstreamPort: number): string {
  const file = path.join(directory, "nginx.conf");
  const temp = (name: string) => path.join(directory, name);
  fs.writeFileSync(
    file,
    `worker_processes 1;
pid ${temp("nginx.pid")};
error_log ${temp("error.log")};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${temp("body")}; proxy_temp_path ${temp("proxy")}; fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")}; scgi_temp_path ${temp("scgi")};
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`,
  );
  return file;
}

async function main(): Promise<void> {
  const { freePort } = await import("@berth/kit");
  const seconds = Number(process.argv[2] ?? 5);
  const connections = Number(process.argv[3] ?? 50);
  const children: ChildProcess[] = [];
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-"));
  try {
    const upstreamPorts = [await freePort(), await freePort()];
    for (const port of upstreamPorts) {
      const upstream = child("upstream", [port]);
      children.push(upstream);
      await ready(upstream);
    }
    const proxyPort = await freePort();
    const proxy = child("proxy", [proxyPort, upstreamPorts.join(",")]);
    children.push(proxy);
    await ready(proxy);

    let nginxPort = 0;
    const nginxBinary = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((candidate) => fs.existsSync(candidate));
    if (nginxBinary) {
      nginxPort = await freePort();
      const config = writeNginxConfig(directory, nginxPort, upstreamPorts[0]!);
      const nginx = spawn(nginxBinary, ["-c", config, "-g", "daemon off;"], { stdio: "inherit" });
      children.push(nginx);
      for (let attempt = 0; attempt < 100 && !(await accepts(nginxPort)); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    // A short warm-up of each path (JIT, connection pools), then the measured runs.
    await load(upstreamPorts[0]!, connections, 1);
    await load(proxyPort, connections, 1);
    const direct = await load(upstreamPorts[0]!, connections, seconds);
    const berth = await load(proxyPort, connections, seconds);
    const nginx = nginxPort ? await load(nginxPort, connections, seconds) : undefined;

    // Route changes under load: the app's replica set flips every 50 ms.
    let changes = 0;
    const churn = await load(proxyPort, connections, seconds, async (signal) => {
      const sets = [[0, 1], [1], [0, 1], [0]];
      while (!signal.aborted) {
        proxy.send({ endpoints: sets[changes % sets.length] });
        changes++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });

    const line = (name: string, result: LoadResult) =>
      `${name.padEnd(22)} ${String(result.rps).padStart(8)} req/s   p99 ${result.p99.toFixed(2).padStart(7)} ms   failed ${result.failed}`;
    console.log(`router proxy benchmark: ${connections} keep-alive connections, ${seconds} s per run, ${os.cpus().length} CPUs`);
    console.log(line("direct", direct));
    console.log(line("berth proxy", berth));
    if (nginx) console.log(line("nginx", nginx));
    else console.log("nginx                  not installed (apt-get install nginx-light)");
    console.log(line(`berth, ${changes} route changes`, churn));
    console.log(`ratio berth/direct ${(berth.rps / direct.rps).toFixed(2)} (target >= 0.40)`);
    if (nginx) console.log(`ratio nginx/direct ${(nginx.rps / direct.rps).toFixed(2)}, berth/nginx ${(berth.rps / nginx.rps).toFixed(2)}`);
    console.log(`requests failed or reset during route changes: ${churn.failed} (target 0)`);
  } finally {
    for (const process of children) process.kill("SIGTERM");
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

const [role, ...args] = process.argv.slice(2);
if (role === "upstream") runUpstream(Number(args[0]));
else if (role === "proxy") await runProxy(Number(args[0]), args[1]!.split(",").map(Number));
else if (role === "load") runLoad(Number(args[0]), Number(args[1]), Number(args[2]));
else await main();
