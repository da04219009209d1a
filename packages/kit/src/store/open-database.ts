import { join } from "node:path";
import pg from "pg";
import type { ClientBase } from "pg";
import { invalidArgument } from "../errors.js";
import { createPoolDatabase } from "./database.js";
import type { Database, DatabaseBackend, StoreLogger } from "./database.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";
import type { EmbeddedPostgres } from "./embedded-postgres.js";
import { applyMigrations, validateMigrations } from "./migrations.js";
import type { Migration } from "./migrations.js";

/** What `openDatabase` needs to find, create and migrate a service's schema. */
export interface OpenDatabaseOptions {
  /** The owning service; names its embedded data directory `<dataDir>/<service>/`. */
  service: string;
  /** The Postgres schema the service owns: lower-case letters, digits and `_`. */
  schema: string;
  migrations: readonly Migration[];
  /** A PostgreSQL URL; without it the service runs its own embedded PGlite. */
  databaseUrl?: string | undefined;
  /** Where embedded databases keep their files; required without `databaseUrl`. */
  dataDir?: string | undefined;
  /** Connections to PostgreSQL (default 10). PGlite always gets exactly one. */
  poolSize?: number | undefined;
  logger?: StoreLogger | undefined;
}

const defaultPoolSize = 10;
const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;
const servicePattern = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Connects to the service's database (PostgreSQL at `databaseUrl`, or an
 * embedded PGlite under `dataDir`), creates its schema if missing and applies
 * pending migrations in one transaction before resolving. On PGlite, queries
 * run one at a time and LISTEN/NOTIFY does not work: use the coordination
 * event stream for notifications.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const target = validateOptions(options);
  const { schema, logger } = options;
  let embedded: EmbeddedPostgres | undefined;
  let pool: pg.Pool;
  let backend: DatabaseBackend;
  if ("databaseUrl" in target) {
    backend = "postgres";
    pool = new pg.Pool({
      connectionString: target.databaseUrl,
      max: options.poolSize ?? defaultPoolSize,
      onConnect: (client) => setSearchPath(client, schema),
    });
  } else {
    backend = "pglite";
    embedded = await startEmbeddedPostgres(target.directory, logger);
    pool = new pg.Pool({
      host: embedded.host,
      port: embedded.port,
      user: "postgres",
      database: "postgres",
      max: 1,
      // The single connection stays open: reopening it after idling would only churn the embedded server.
      idleTimeoutMillis: 0,
      onConnect: (client) => setSearchPath(client, schema),
    });
  }
  // Without a listener, a connection dropped while idle would crash the process.
  pool.on("error", (error) => logger?.warn("idle database connection failed", { schema, error }));
  const database = createPoolDatabase(pool, schema, backend, async () => {
    await pool.end();
    await embedded?.stop();
  });
  try {
    await database.transaction((tx) => applyMigrations(tx, schema, options.migrations, logger));
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}

// The PGlite socket server ignores startup parameters, so `options=-c search_path` would not do.
async function setSearchPath(client: ClientBase, schema: string): Promise<void> {
  await client.query(`SET search_path TO "${schema}"`);
}

/** Checks every option and resolves where the database lives. */
function validateOptions(options: OpenDatabaseOptions): { databaseUrl: string } | { directory: string } {
  if (!servicePattern.test(options.service)) {
    throw invalidArgument(
      "service",
      `must be lower-case letters, digits and '-', starting with a letter; got ${JSON.stringify(options.service)}`,
    );
  }
  if (!schemaPattern.test(options.schema) || options.schema.startsWith("pg_")) {
    throw invalidArgument(
      "schema",
      `must be lower-case letters, digits and '_', not starting with a digit or pg_; got ${JSON.stringify(options.schema)}`,
    );
  }
  if (options.poolSize !== undefined && (!Number.isSafeInteger(options.poolSize) || options.poolSize < 1)) {
    throw invalidArgument("poolSize", `must be a positive integer, got ${options.poolSize}`);
  }
  validateMigrations(options.migrations);
  if (options.databaseUrl !== undefined) {
    if (options.databaseUrl === "") throw invalidArgument("databaseUrl", "must not be empty");
    return { databaseUrl: options.databaseUrl };
  }
  if (options.dataDir === undefined || options.dataDir === "") {
    throw invalidArgument("dataDir", "is required when databaseUrl is not set");
  }
  return { directory: join(options.dataDir, options.service) };
}
