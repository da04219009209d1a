import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { failedPrecondition, invalidArgument } from "../errors.js";
import type { Queryable, StoreLogger } from "./database.js";

/**
 * One step of a service's schema. `sql` runs with `search_path` set to the
 * service's schema, so it uses unqualified names. Ids must be strictly
 * increasing; an applied migration must never change.
 */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

interface AppliedMigration {
  id: number;
  name: string;
  checksum: string;
}

/** Refuses a migration list that could not be applied in a stable order. */
export function validateMigrations(migrations: readonly Migration[]): void {
  let previousId = 0;
  migrations.forEach((migration, index) => {
    const field = `migrations[${index}]`;
    if (!Number.isSafeInteger(migration.id) || migration.id <= 0) {
      throw invalidArgument(`${field}.id`, `must be a positive integer, got ${migration.id}`);
    }
    if (migration.id <= previousId) {
      throw invalidArgument(`${field}.id`, `must be greater than the previous id ${previousId}, got ${migration.id}`);
    }
    if (migration.name.trim() === "") {
      throw invalidArgument(`${field}.name`, "must not be empty");
    }
    if (migration.sql.trim() === "") {
      throw invalidArgument(`${field}.sql`, "must not be empty");
    }
    previousId = migration.id;
  });
}

// Recorded with each applied migration, so later edits to it are caught.
function migrationChecksum(migration: Migration): string {
  return createHash("sha256").update(migration.sql).digest("hex");
}

/**
 * Creates `schema` and its `schema_migrations` table if missing and applies
 * every pending migration, all in the one transaction the caller opened.
 * Returns the migrations it applied.
 */
export async function applyMigrations(tx: Queryable, schema: string, migrations: readonly Migration[], logger?: StoreLogger): Promise<Migration[]> {
  // Replicas starting together queue here; the loser then sees the winner's rows.
  await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`berth.migrations.${schema}`]);
  await tx.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await tx.query(
    `CREATE TABLE IF NOT EXISTS "${schema}".schema_migrations (
      id integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`,
  );
  const { rows: applied } = await tx.query<AppliedMigration>(`SELECT id, name, checksum FROM "${schema}".schema_migrations ORDER BY id`);
  const pending = pendingMigrations(schema, migrations, applied, logger);
  for (const migration of pending) {
    try {
      await tx.query(migration.sql);
    } catch (error) {
      throw new ConnectError(
        `migration ${migration.id} (${migration.name}) failed in schema ${schema}: ${(error as Error).message}`,
        Code.Internal,
        undefined,
        undefined,
        error,
      );
    }
    await tx.query(`INSERT INTO "${schema}".schema_migrations (id, name, checksum) VALUES ($1, $2, $3)`, [
      migration.id,
      migration.name,
      migrationChecksum(migration),
    ]);
  }
  if (pending.length > 0) {
    logger?.info("applied migrations", { schema, migrations: pending.map(({ id, name }) => `${id} ${name}`) });
  }
  return pending;
}

function pendingMigrations(schema: string, migrations: readonly Migration[], applied: AppliedMigration[], logger: StoreLogger | undefined): Migration[] {
  const known = new Map(migrations.map((migration) => [migration.id, migration]));
  for (const row of applied) {
    const migration = known.get(row.id);
    if (migration === undefined) {
      // A newer replica got here first during a rolling upgrade; its additions must not stop this one.
      logger?.warn("schema has a migration this build does not know", { schema, id: row.id, name: row.name });
      continue;
    }
    const checksum = migrationChecksum(migration);
    if (checksum !== row.checksum) {
      throw failedPrecondition(
        `migration ${row.id} (${row.name}) in schema ${schema} was changed after it was applied ` +
          `(checksum ${row.checksum} applied, ${checksum} now): add a new migration instead`,
      );
    }
  }
  const appliedIds = new Set(applied.map((row) => row.id));
  const newestApplied = applied.at(-1)?.id ?? 0;
  const pending = migrations.filter((migration) => !appliedIds.has(migration.id));
  const outOfOrder = pending.find((migration) => migration.id < newestApplied);
  if (outOfOrder !== undefined) {
    throw failedPrecondition(
      `migration ${outOfOrder.id} (${outOfOrder.name}) is older than migration ${newestApplied} ` +
        `already applied to schema ${schema}: give it an id above ${newestApplied}`,
    );
  }
  return pending;
}
