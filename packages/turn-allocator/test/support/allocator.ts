import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInternalClient, silentLogger } from "@berth/kit";
import type { Coordination, RunningServer } from "@berth/kit";
import { testDatabaseUrl } from "@berth/kit/testing";
import { TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import pg from "pg";
import { readTurnAllocatorConfig, startTurnAllocator } from "../../src/index.js";
import type { TurnAllocatorConfig, TurnAllocatorDeps } from "../../src/index.js";

/** The real PostgreSQL of this machine; every test gets schemas of its own. */
export const POSTGRES_URL = testDatabaseUrl;
export const INTERNAL_TOKEN = "turn-allocator-test-token";

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh schema name, dropped when the test ends. */
export function testSchema(t: Teardown): string {
  const schema = `turn_test_${randomBytes(6).toString("hex")}`;
  t.teardown(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });
  return schema;
}

/** A data directory removed when the test ends. */
export function testDataDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-turn-test-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The configuration the environment `env` (on top of test defaults) gives. */
export function testConfig(t: Teardown, env: Record<string, string>, schema = testSchema(t)): TurnAllocatorConfig {
  return readTurnAllocatorConfig({
    BERTH_DATA_DIR: testDataDir(t),
    BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN,
    BERTH_TURN_ALLOCATOR_PORT: "0",
    BERTH_TURN_ALLOCATOR_SCHEMA: schema,
    BERTH_LOG_LEVEL: "error",
    DATABASE_URL: POSTGRES_URL,
    ...env,
  });
}

/** A running allocator and a gRPC client to it. */
export interface TestAllocator {
  server: RunningServer;
  client: ReturnType<typeof createInternalClient<typeof TurnAllocatorService>>;
}

/** Starts an allocator, stopped when the test ends. */
export async function startTestAllocator(
  t: Teardown,
  config: TurnAllocatorConfig,
  deps: TurnAllocatorDeps & { coordination?: Coordination } = {},
): Promise<TestAllocator> {
  const server = await startTurnAllocator(config, { logger: silentLogger, scheduler: false, router: false, ...deps });
  t.teardown(() => server.close(500));
  const client = createInternalClient(TurnAllocatorService, { baseUrl: server.url, token: INTERNAL_TOKEN, timeoutMs: 30_000 });
  return { server, client };
}
