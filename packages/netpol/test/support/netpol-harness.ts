import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInternalClient, openDatabase, silentLogger } from "@berth/kit";
import type { Database } from "@berth/kit";
import { testDatabaseUrl } from "@berth/kit/testing";
import type { Client } from "@connectrpc/connect";
import type { KubeConfig } from "@kubernetes/client-node";
import { NetpolService } from "@berth/proto/netpol/v1/netpol";
import { readNetpolConfig, startNetpol } from "../../src/index.js";
import type { NetpolConfig, RunningNetpol } from "../../src/index.js";
import { netpolMigrations } from "../../src/store/migrations.js";
import { startTestScheduler, TEST_TOKEN } from "./test-scheduler.js";
import type { TestApp, TestScheduler } from "./test-scheduler.js";

/** The test PostgreSQL (tests use a fresh schema each). */
export const POSTGRES_URL = testDatabaseUrl;

interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

/** A migrated netpol schema of its own on the real PostgreSQL, dropped at teardown. */
export async function openTestDatabase(t: Teardown): Promise<Database> {
  const schema = `netpol_test_${randomBytes(6).toString("hex")}`;
  const database = await openDatabase({ service: "netpol", schema, migrations: netpolMigrations, databaseUrl: POSTGRES_URL, poolSize: 4 });
  t.teardown(async () => {
    await database.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await database.close();
  });
  return database;
}

/** netpol on its own schema, following a stand-in scheduler, with a client. */
export interface NetpolHarness {
  netpol: RunningNetpol;
  scheduler: TestScheduler;
  client: Client<typeof NetpolService>;
  database: Database;
  config: NetpolConfig;
  /** Restarts netpol on the same database. */
  restart(): Promise<void>;
}

/** Starts netpol for a test, with the scheduler holding `apps`. */
export async function startNetpolHarness(
  t: Teardown,
  apps: Record<string, TestApp> = {},
  env: Record<string, string> = {},
  kubeConfig?: KubeConfig,
): Promise<NetpolHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-netpol-test-"));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const scheduler = await startTestScheduler(apps);
  t.teardown(() => scheduler.close());
  const database = await openTestDatabase(t);
  const config = readNetpolConfig({
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: TEST_TOKEN,
    BERTH_NETPOL_PORT: "0",
    BERTH_SCHEDULER_URL: scheduler.url,
    ...env,
  });
  const harness: NetpolHarness = {
    netpol: await startNetpol(config, { logger: silentLogger, database, kubeConfig }),
    scheduler,
    client: undefined as never,
    database,
    config,
    async restart() {
      await harness.netpol.close(0);
      harness.netpol = await startNetpol({ ...config, port: harness.netpol.port }, { logger: silentLogger, database, kubeConfig });
      await harness.netpol.ready;
    },
  };
  harness.client = createInternalClient(NetpolService, { baseUrl: harness.netpol.url, token: TEST_TOKEN });
  t.teardown(() => harness.netpol.close(0));
  await harness.netpol.ready;
  return harness;
}
