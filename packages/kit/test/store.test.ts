import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { ExecutionContext } from "ava";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { fieldViolationsOf, openDatabase } from "@berth/kit";
import type { Database, Migration, OpenDatabaseOptions, StoreLogger } from "@berth/kit";
import { testDatabaseUrl as postgresUrl } from "@berth/kit/testing";
import { rejection } from "./support/rejection.js";

/** Where one test's database lives: everything openDatabase needs but the migrations. */
type Place = Pick<OpenDatabaseOptions, "service" | "schema" | "databaseUrl" | "dataDir">;

interface Backend {
  name: "postgres" | "embedded";
  /** `count` fresh places side by side (schemas of one database, or services of one data directory), removed after the test. */
  places(t: ExecutionContext, count: number): Promise<Place[]>;
}

const admin = new pg.Pool({ connectionString: postgresUrl, max: 2 });
let embeddedRoot: string;
let keeper: Database | undefined;

test.before(async () => {
  // One embedded cluster for the file, kept running between tests by a database of its own.
  embeddedRoot = await mkdtemp(join(tmpdir(), "berth-store-"));
  keeper = await openDatabase({ service: "keeper", schema: "keeper", migrations: [], dataDir: embeddedRoot });
});

test.after.always(async () => {
  await admin.end();
  await keeper?.close();
  if (embeddedRoot !== undefined) await rm(embeddedRoot, { recursive: true, force: true });
});

const uniqueSuffix = () => randomBytes(5).toString("hex");

const backends: Backend[] = [
  {
    name: "postgres",
    async places(t, count) {
      const schemas = Array.from({ length: count }, () => `store_test_${uniqueSuffix()}`);
      t.teardown(async () => {
        for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      });
      return schemas.map((schema) => ({ service: "svc", schema, databaseUrl: postgresUrl }));
    },
  },
  {
    name: "embedded",
    async places(t, count) {
      const suffixes = Array.from({ length: count }, () => uniqueSuffix());
      const keeperDatabase = keeper!;
      t.teardown(async () => {
        for (const suffix of suffixes) await keeperDatabase.query(`DROP SCHEMA IF EXISTS "svc_${suffix}" CASCADE`);
      });
      return suffixes.map((suffix) => ({ service: `svc-${suffix}`, schema: `svc_${suffix}`, dataDir: embeddedRoot }));
    },
  },
];

async function open(t: ExecutionContext, place: Place, migrations: Migration[], logger?: StoreLogger): Promise<Database> {
  const database = await openDatabase({ ...place, migrations, logger });
  t.teardown(() => database.close());
  return database;
}

const createItems: Migration = {
  id: 1,
  name: "items",
  sql: "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL); CREATE INDEX items_name ON items (name);",
};
const addItemColour: Migration = { id: 2, name: "item colour", sql: "ALTER TABLE items ADD COLUMN colour text" };
const createTags: Migration = { id: 3, name: "tags", sql: "CREATE TABLE tags (name text PRIMARY KEY)" };

async function appliedMigrations(database: Database) {
  const { rows } = await database.query<{ id: number; name: string; applied_at: Date }>("SELECT id, name, applied_at FROM schema_migrations ORDER BY id");
  return rows;
}

async function tableShape(database: Database) {
  const { rows } = await database.query(
    `SELECT table_name, column_name, data_type, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    [database.schema],
  );
  return rows;
}

async function itemNames(database: Pick<Database, "query">): Promise<string[]> {
  const { rows } = await database.query<{ name: string }>("SELECT name FROM items ORDER BY id");
  return rows.map((row) => row.name);
}

for (const backend of backends) {
  const named = (title: string) => `${backend.name}: ${title}`;
  const backendTest = test;

  backendTest(named("opening applies every migration once, in the service's schema"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems, addItemColour]);
    t.deepEqual(
      (await appliedMigrations(database)).map(({ id, name }) => ({ id, name })),
      [
        { id: 1, name: "items" },
        { id: 2, name: "item colour" },
      ],
    );
    const { rows } = await database.query("SELECT relnamespace::regnamespace::text AS schema FROM pg_class WHERE oid = 'items'::regclass");
    t.deepEqual(rows, [{ schema: place!.schema }]);
    t.deepEqual((await database.query("SHOW search_path")).rows, [{ search_path: place!.schema }]);
  });

  backendTest(named("opening again with the same migrations changes nothing"), async (t) => {
    const [place] = await backend.places(t, 1);
    const first = await open(t, place!, [createItems, addItemColour]);
    const appliedBefore = await appliedMigrations(first);
    const shapeBefore = await tableShape(first);
    await first.close();

    const second = await open(t, place!, [createItems, addItemColour]);
    t.deepEqual(await appliedMigrations(second), appliedBefore);
    t.deepEqual(await tableShape(second), shapeBefore);
  });

  backendTest(named("a migration added later is applied alone on the next open"), async (t) => {
    const [place] = await backend.places(t, 1);
    const first = await open(t, place!, [createItems]);
    const [itemsApplied] = await appliedMigrations(first);
    await first.close();

    const second = await open(t, place!, [createItems, addItemColour, createTags]);
    const applied = await appliedMigrations(second);
    t.deepEqual(
      applied.map(({ id }) => id),
      [1, 2, 3],
    );
    t.deepEqual(applied[0], itemsApplied);
    await second.query("INSERT INTO tags (name) VALUES ('x')");
  });

  backendTest(named("data written before close is there after reopening"), async (t) => {
    const [place] = await backend.places(t, 1);
    const first = await open(t, place!, [createItems]);
    await first.query("INSERT INTO items (name) VALUES ($1), ($2)", ["anchor", "buoy"]);
    await first.close();
    await first.close();

    const second = await open(t, place!, [createItems]);
    t.deepEqual(await itemNames(second), ["anchor", "buoy"]);
  });

  backendTest(named("a migration changed after it was applied stops start-up, naming it"), async (t) => {
    const [place] = await backend.places(t, 1);
    await (await open(t, place!, [createItems])).close();

    const edited = { ...createItems, sql: `${createItems.sql} ALTER TABLE items ADD COLUMN size int;` };
    const error = await rejection(openDatabase({ ...place!, migrations: [edited, addItemColour] }), Code.FailedPrecondition);
    t.regex(error.message, /migration 1 \(items\) .* was changed after it was applied/);

    // The refusal came before anything else was applied.
    const database = await open(t, place!, [createItems]);
    t.deepEqual(
      (await appliedMigrations(database)).map(({ id }) => id),
      [1],
    );
  });

  backendTest(named("a new migration numbered below an applied one is refused"), async (t) => {
    const [place] = await backend.places(t, 1);
    await (await open(t, place!, [createItems, createTags])).close();

    const error = await rejection(openDatabase({ ...place!, migrations: [createItems, addItemColour, createTags] }), Code.FailedPrecondition);
    t.regex(error.message, /migration 2 \(item colour\) is older than migration 3/);
  });

  backendTest(named("a migration applied by a newer build is tolerated with a warning"), async (t) => {
    const [place] = await backend.places(t, 1);
    await (await open(t, place!, [createItems, addItemColour])).close();

    const warnings: unknown[] = [];
    const logger: StoreLogger = { info: () => {}, warn: (message, fields) => warnings.push({ message, fields }) };
    const database = await open(t, place!, [createItems], logger);
    t.is((await appliedMigrations(database)).length, 2);
    t.like(warnings, [{ message: "schema has a migration this build does not know", fields: { id: 2 } }]);
  });

  backendTest(named("a failing migration rolls back every migration of that start-up"), async (t) => {
    const [place] = await backend.places(t, 1);
    const broken: Migration = { id: 2, name: "broken", sql: "ALTER TABLE no_such_table ADD COLUMN x int" };
    const error = await rejection(openDatabase({ ...place!, migrations: [createItems, broken] }), Code.Internal);
    t.regex(error.message, /migration 2 \(broken\) failed/);

    const database = await open(t, place!, []);
    t.deepEqual(await appliedMigrations(database), []);
    const { rows } = await database.query("SELECT to_regclass('items') AS items");
    t.deepEqual(rows, [{ items: null }]);
  });

  backendTest(named("a transaction commits what its function wrote"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems]);
    const result = await database.transaction(async (tx) => {
      await tx.query("INSERT INTO items (name) VALUES ('keel')");
      await tx.query("INSERT INTO items (name) VALUES ('mast')");
      return itemNames(tx);
    });
    t.deepEqual(result, ["keel", "mast"]);
    t.deepEqual(await itemNames(database), ["keel", "mast"]);
  });

  backendTest(named("a transaction whose function throws rolls back and rethrows"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems]);
    await database.query("INSERT INTO items (name) VALUES ('hull')");
    const failure = new Error("abandon ship");
    const thrown = await t.throwsAsync(
      database.transaction(async (tx) => {
        await tx.query("INSERT INTO items (name) VALUES ('sail')");
        await tx.query("DELETE FROM items WHERE name = 'hull'");
        throw failure;
      }),
    );
    t.is(thrown, failure);
    t.deepEqual(await itemNames(database), ["hull"]);
    // The connection went back to the pool usable, outside any transaction.
    await database.query("INSERT INTO items (name) VALUES ('rudder')");
    t.deepEqual(await itemNames(database), ["hull", "rudder"]);
  });

  backendTest(named("a transaction rolls back when the database rejects a statement"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems]);
    await t.throwsAsync(
      database.transaction(async (tx) => {
        await tx.query("INSERT INTO items (name) VALUES ('oar')");
        await tx.query("INSERT INTO items (name) VALUES (NULL)");
      }),
      { message: /null value/ },
    );
    t.deepEqual(await itemNames(database), []);
  });

  backendTest(named("inside a transaction, the database's own queries and transactions run beside it on other connections"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems]);
    const names = await database.transaction(async (tx) => {
      await tx.query("INSERT INTO items (name) VALUES ('deck')");
      // Not yet committed: invisible outside the transaction.
      t.deepEqual(await itemNames(database), []);
      await database.transaction(async (other) => {
        await other.query("INSERT INTO items (name) VALUES ('mast')");
      });
      return itemNames(tx);
    });
    t.deepEqual(names.sort(), ["deck", "mast"]);
    t.deepEqual((await itemNames(database)).sort(), ["deck", "mast"]);
  });

  backendTest(named("a tx kept past its transaction is refused"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems]);
    const leaked = await database.transaction(async (tx) => tx);
    const error = await rejection(leaked.query("INSERT INTO items (name) VALUES ('late')"), Code.FailedPrecondition);
    t.regex(error.message, /after its transaction ended/);
    t.deepEqual(await itemNames(database), []);
  });

  backendTest(named("concurrent queries and transactions each get their own results"), async (t) => {
    const [place] = await backend.places(t, 1);
    const database = await open(t, place!, [createItems]);
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, async (_, index) => {
        if (index % 3 !== 0) {
          const { rows } = await database.query<{ echo: string }>("SELECT $1::text || '!' AS echo", [`q${index}`]);
          return rows[0]?.echo === `q${index}!`;
        }
        const attempt = database.transaction(async (tx) => {
          await tx.query("INSERT INTO items (name) VALUES ($1)", [`t${index}`]);
          const { rows } = await tx.query<{ name: string }>("SELECT name FROM items WHERE name = $1", [`t${index}`]);
          if (index % 2 === 1) throw new Error("roll back the odd ones");
          return rows.length === 1;
        });
        return index % 2 === 1 ? (await attempt.catch((error: Error) => error.message)) === "roll back the odd ones" : attempt;
      }),
    );
    t.deepEqual(
      outcomes,
      outcomes.map(() => true),
    );
    const expected = Array.from({ length: 60 }, (_, index) => index)
      .filter((index) => index % 6 === 0)
      .map((index) => `t${index}`);
    t.deepEqual((await itemNames(database)).sort(), expected.sort());
  });

  backendTest(named("two services' schemas with the same table names do not see each other"), async (t) => {
    const [first, second] = await backend.places(t, 2);
    const a = await open(t, first!, [createItems]);
    const b = await open(t, second!, [createItems]);
    await a.query("INSERT INTO items (name) VALUES ('from a')");
    await b.query("INSERT INTO items (name) VALUES ('from b')");
    t.deepEqual(await itemNames(a), ["from a"]);
    t.deepEqual(await itemNames(b), ["from b"]);
  });
}

test("options are validated before anything is opened, naming the field", async (t) => {
  const base = { service: "svc", schema: "svc", migrations: [createItems], dataDir: embeddedRoot };
  const cases: Array<[Partial<OpenDatabaseOptions>, string]> = [
    [{ service: "Bad/Name" }, "service"],
    [{ schema: "1st" }, "schema"],
    [{ schema: "pg_catalog" }, "schema"],
    [{ schema: 'x"; DROP TABLE y; --' }, "schema"],
    [{ dataDir: undefined }, "dataDir"],
    [{ databaseUrl: "" }, "databaseUrl"],
    [{ poolSize: 0 }, "poolSize"],
    [{ migrations: [{ ...createItems, id: 0 }] }, "migrations[0].id"],
    [{ migrations: [addItemColour, createItems] }, "migrations[1].id"],
    [{ migrations: [createItems, { ...addItemColour, id: 1 }] }, "migrations[1].id"],
    [{ migrations: [{ ...createItems, name: " " }] }, "migrations[0].name"],
    [{ migrations: [{ ...createItems, sql: "" }] }, "migrations[0].sql"],
  ];
  for (const [override, field] of cases) {
    const error = await rejection(openDatabase({ ...base, ...override }), Code.InvalidArgument);
    t.deepEqual(
      fieldViolationsOf(error).map((violation) => violation.field),
      [field],
      JSON.stringify(override),
    );
  }
});
