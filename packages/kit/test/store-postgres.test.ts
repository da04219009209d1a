import { randomBytes } from "node:crypto";
import test from "ava";
import pg from "pg";
import { openDatabase } from "@berth/kit";
import type { Migration } from "@berth/kit";
import { testDatabaseUrl as postgresUrl } from "@berth/kit/testing";

test("replicas opening the same schema together apply its migrations exactly once", async (t) => {
  const schema = `store_race_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  });
  const migrations: Migration[] = [
    // No IF NOT EXISTS: applying twice would fail, and the sleep keeps the other replicas queued on the lock.
    { id: 1, name: "starts", sql: "CREATE TABLE starts (at timestamptz NOT NULL DEFAULT now()); SELECT pg_sleep(0.3);" },
    { id: 2, name: "one start", sql: "INSERT INTO starts DEFAULT VALUES" },
  ];

  const replicas = await Promise.all(Array.from({ length: 4 }, () => openDatabase({ service: "race", schema, migrations, databaseUrl: postgresUrl })));
  t.teardown(() => Promise.all(replicas.map((replica) => replica.close())));

  const { rows: applied } = await admin.query(`SELECT id FROM "${schema}".schema_migrations ORDER BY id`);
  t.deepEqual(applied, [{ id: 1 }, { id: 2 }]);
  const { rows: starts } = await admin.query(`SELECT count(*)::int AS count FROM "${schema}".starts`);
  t.deepEqual(starts, [{ count: 1 }]);
});
