import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { readApiConfig } from "../src/config.js";

function dataDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-api-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("defaults: port 8080, peers on their default ports, any origin, 10 s deadline", (t) => {
  const config = readApiConfig({ BERTH_DATA_DIR: dataDir(t), BERTH_INTERNAL_TOKEN: "internal-token-0123456789" });
  t.is(config.port, 8080);
  t.deepEqual(config.peers, {
    scheduler: "http://127.0.0.1:8081",
    router: "http://127.0.0.1:8082",
    turnAllocator: "http://127.0.0.1:8083",
    netpol: "http://127.0.0.1:8084",
  });
  t.deepEqual(config.corsOrigins, ["*"]);
  t.is(config.callTimeoutMs, 10_000);
  t.is(config.adminToken, undefined);
});

test("peers, origins, deadline and admin token come from the environment", (t) => {
  const config = readApiConfig({
    BERTH_DATA_DIR: dataDir(t),
    BERTH_INTERNAL_TOKEN: "internal-token-0123456789",
    BERTH_API_PORT: "9090",
    BERTH_SCHEDULER_URL: "http://scheduler.internal:7000/",
    BERTH_API_CORS_ORIGINS: "https://console.example.com, http://localhost:5173",
    BERTH_API_CALL_TIMEOUT_MS: "2500",
    BERTH_ADMIN_TOKEN: "a-very-long-operator-token",
  });
  t.is(config.port, 9090);
  t.is(config.peers.scheduler, "http://scheduler.internal:7000");
  t.deepEqual(config.corsOrigins, ["https://console.example.com", "http://localhost:5173"]);
  t.is(config.callTimeoutMs, 2500);
  t.is(config.adminToken, "a-very-long-operator-token");
});

test("bad values fail loudly, naming the variable", (t) => {
  const base = { BERTH_DATA_DIR: dataDir(t), BERTH_INTERNAL_TOKEN: "internal-token-0123456789" };
  t.throws(() => readApiConfig({ ...base, BERTH_ADMIN_TOKEN: "short" }), { message: /BERTH_ADMIN_TOKEN/ });
  t.throws(() => readApiConfig({ ...base, BERTH_API_CORS_ORIGINS: "console.example.com" }), { message: /BERTH_API_CORS_ORIGINS/ });
  t.throws(() => readApiConfig({ ...base, BERTH_API_CORS_ORIGINS: "https://example.com/path" }), { message: /BERTH_API_CORS_ORIGINS/ });
  t.throws(() => readApiConfig({ ...base, BERTH_API_CALL_TIMEOUT_MS: "10" }), { message: /BERTH_API_CALL_TIMEOUT_MS/ });
  t.throws(() => readApiConfig({ ...base, BERTH_ROUTER_URL: "router:8082" }), { message: /BERTH_ROUTER_URL/ });
});
