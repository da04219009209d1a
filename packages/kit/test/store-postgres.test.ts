import { randomBytes } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import type { AddressInfo } from "node:net";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { createInternalClient, openDatabase, servePartial, silentLogger, startServer } from "@berth/kit";
import type { Migration } from "@berth/kit";
import { testDatabaseUrl as postgresUrl } from "@berth/kit/testing";
import { createPoolDatabase } from "../src/store/database.js";

const TOKEN = "internal-test-token";

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

test("a database with no connection left (SQLSTATE 53300) or out of reach answers UNAVAILABLE, not UNKNOWN", async (t) => {
  const suffix = randomBytes(5).toString("hex");
  const [role, schema, password] = [`berth_limited_${suffix}`, `store_limited_${suffix}`, randomBytes(12).toString("hex")];
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  const database = new URL(postgresUrl).pathname.slice(1);
  await admin.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${password}' CONNECTION LIMIT 1`);
  await admin.query(`GRANT CREATE ON DATABASE "${database}" TO "${role}"`);
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.query(`REVOKE CREATE ON DATABASE "${database}" FROM "${role}"`);
    await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    await admin.end();
  });
  const limitedUrl = new URL(postgresUrl);
  [limitedUrl.username, limitedUrl.password] = [role, password];
  const limited = await openDatabase({ service: "limited", schema, migrations: [], databaseUrl: limitedUrl.toString(), poolSize: 2 });
  const unreachableUrl = new URL(postgresUrl);
  unreachableUrl.port = String(await closedPort());
  const unreachable = createPoolDatabase(new pg.Pool({ connectionString: unreachableUrl.toString() }), "public", async () => {});
  t.teardown(() => limited.close());

  const server = await startServer({
    name: "store-unavailable-test",
    port: 0,
    logger: silentLogger,
    internalToken: TOKEN,
    services: [
      servePartial(SchedulerService, {
        async getApp(request) {
          await (request.name === "unreachable" ? unreachable : limited).query("SELECT 1");
          return { app: { name: request.name } };
        },
      }),
    ],
  });
  t.teardown(() => server.close(500));
  const client = createInternalClient(SchedulerService, { baseUrl: server.url, token: TOKEN });

  // The role's one connection is busy in a transaction: the pool's second connection is refused.
  let finish = () => {};
  const held = limited.transaction(() => new Promise<void>((resolve) => (finish = resolve)));
  const busy = ConnectError.from(await t.throwsAsync(client.getApp({ name: "busy" })));
  t.is(busy.code, Code.Unavailable);
  t.regex(busy.rawMessage, /too many connections/);
  finish();
  await held;
  t.is((await client.getApp({ name: "free" })).app?.name, "free");

  const down = ConnectError.from(await t.throwsAsync(client.getApp({ name: "unreachable" })));
  t.is(down.code, Code.Unavailable);
  t.regex(down.rawMessage, /the database is unavailable/);
});

/** A TCP port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
