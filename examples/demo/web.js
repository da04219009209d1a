// The demo's public HTTP process (`web`, and `admin-web` with --admin).
// Config vars it understands:
//   GREETING          text included in every response
//   BOOT_DELAY_MS     wait this long before listening (a slow-starting app)
//   HEALTH_STATUS     status code of /health (e.g. 503: never healthy once the probe is pointed at /health)
//   HEALTH_DELAY_MS   /health answers 503 for this long after start (a check that passes late), while / answers at once
// Routes: / (JSON; the default health probe), /health (for a health path set to it), /health/fail (/health fails from then on), /burn?ms=N (burns one CPU for N ms on a
// worker thread so the process stays responsive), anything else answers JSON.
import http from "node:http";
import { Worker } from "node:worker_threads";

const role = process.argv.includes("--admin") ? "admin-web" : "web";
const port = Number(process.env.PORT ?? 5000);
const bootDelayMs = Number(process.env.BOOT_DELAY_MS ?? 0);
let healthStatus = Number(process.env.HEALTH_STATUS ?? 200);
const healthyFrom = Date.now() + Number(process.env.HEALTH_DELAY_MS ?? 0);

const burnSource = `
  const { workerData } = require("node:worker_threads");
  const end = Date.now() + workerData;
  while (Date.now() < end) { Math.sqrt(Math.random()); }
`;

const server = http.createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://localhost");
  if (url.pathname === "/health") {
    const status = Date.now() < healthyFrom ? 503 : healthStatus;
    response.writeHead(status, { "content-type": "text/plain" });
    response.end(status < 400 ? "ok\n" : "unhealthy\n");
    return;
  }
  if (url.pathname === "/health/fail") {
    healthStatus = 503;
    response.writeHead(200, { "content-type": "text/plain" });
    response.end("health checks fail from now on\n");
    return;
  }
  if (url.pathname === "/burn") {
    const ms = Math.min(Number(url.searchParams.get("ms") ?? 1000), 600_000);
    new Worker(burnSource, { eval: true, workerData: ms });
    response.writeHead(202, { "content-type": "text/plain" });
    response.end(`burning ${ms} ms\n`);
    return;
  }
  response.writeHead(200, { "content-type": "application/json" });
  response.end(
    `${JSON.stringify({
      app: process.env.BERTH_APP,
      process: role,
      release: process.env.BERTH_RELEASE,
      replica: process.env.BERTH_REPLICA_NAME,
      greeting: process.env.GREETING ?? "hello",
    })}\n`,
  );
});

setTimeout(() => {
  server.listen(port, process.env.HOST ?? "127.0.0.1", () => console.log(`${role} listening on ${port}`));
}, bootDelayMs);

process.on("SIGTERM", () => {
  console.log(`${role} got SIGTERM, closing`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
