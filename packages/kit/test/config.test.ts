import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ConfigError, envBool, envInt, envUrl, internalTokenFor, maskedConfig, peerUrl, readCommonConfig } from "@berth/kit";

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("defaults apply when the environment is empty", (t) => {
  const dataDir = tempDir(t);
  const config = readCommonConfig({ BERTH_DATA_DIR: dataDir }, "scheduler");
  t.is(config.port, 8081);
  t.is(config.host, "127.0.0.1");
  t.is(config.databaseUrl, undefined);
  t.is(config.platformDomain, "berth.localhost");
  t.is(config.dataDir, dataDir);
});

test("a service's port variable is named after it", (t) => {
  const config = readCommonConfig({ BERTH_DATA_DIR: tempDir(t), BERTH_TURN_ALLOCATOR_PORT: "9999" }, "turn-allocator");
  t.is(config.port, 9999);
});

test("bad values fail loudly naming the variable", (t) => {
  t.throws(() => envInt({ BERTH_API_PORT: "80a" }, "BERTH_API_PORT", 1), { instanceOf: ConfigError, message: /BERTH_API_PORT must be an integer/ });
  t.throws(() => envInt({ N: "70000" }, "N", 1, { max: 65535 }), { message: /N must be at most 65535/ });
  t.throws(() => envBool({ B: "yes" }, "B", false), { message: /B must be true or false/ });
  t.throws(() => envUrl({ U: "ftp://x" }, "U"), { message: /U must be an http\(s\) URL/ });
  t.throws(() => envUrl({}, "U"), { message: /U is required/ });
  t.throws(() => readCommonConfig({ BERTH_DATA_DIR: tempDir(t), BERTH_LOG_LEVEL: "loud" }, "api"), { message: /BERTH_LOG_LEVEL must be one of/ });
});

test("peer URLs come from BERTH_<SERVICE>_URL or the default port", (t) => {
  t.is(peerUrl({}, "router"), "http://127.0.0.1:8082");
  t.is(peerUrl({ BERTH_ROUTER_URL: "http://10.0.0.2:9000/" }, "router"), "http://10.0.0.2:9000");
});

test("the internal token is generated once per data directory and shared", (t) => {
  const dataDir = tempDir(t);
  const first = internalTokenFor({}, dataDir);
  t.true(first.length >= 32);
  t.is(internalTokenFor({}, dataDir), first);
  t.is(internalTokenFor({ BERTH_INTERNAL_TOKEN: "x".repeat(20) }, dataDir), "x".repeat(20));
  t.throws(() => internalTokenFor({ BERTH_INTERNAL_TOKEN: "short" }, dataDir), { message: /at least 16/ });
});

test("masked config hides secrets and URL passwords", (t) => {
  t.deepEqual(maskedConfig({ internalToken: "abc", databaseUrl: "postgres://u:pw@h/db", port: 1 }), {
    internalToken: "***",
    databaseUrl: "postgres://u:***@h/db",
    port: 1,
  });
});
