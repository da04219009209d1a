import { randomBytes } from "node:crypto";
import { openDatabase } from "@berth/kit";
import type { Database } from "@berth/kit";
import { routerMigrations } from "../../src/store/migrations.js";
import { createRouterStore } from "../../src/store/router-store.js";
import type { RouterStore } from "../../src/store/router-store.js";
import { testDatabaseUrl } from "@berth/kit/testing";

/** The real PostgreSQL of this machine (tests use a fresh schema each). */
export const POSTGRES_URL = testDatabaseUrl;

/** A migrated router schema of its own on the real PostgreSQL. */
export interface TestStore {
  db: Database;
  store: RouterStore;
  close(): Promise<void>;
}

/** Opens the router's store in a new schema, dropped again by `close`. */
export async function openTestStore(): Promise<TestStore> {
  const schema = `router_test_${randomBytes(6).toString("hex")}`;
  const db = await openDatabase({ service: "router", schema, migrations: routerMigrations, databaseUrl: POSTGRES_URL, poolSize: 4 });
  return {
    db,
    store: createRouterStore(db),
    async close() {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.close();
    },
  };
}
