import { existsSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import type { ClientBase } from "pg";
import { failedPrecondition, invalidArgument } from "../errors.js";
import { createPoolDatabase } from "./database.js";
import type { Database, StoreLogger } from "./database.js";
import { applicationNameSuffix, clusterPaths, useEmbeddedCluster } from "./embedded-cluster.js";
import { tryLockFile } from "./lock-file.js";
import { applyMigrations, validateMigrations } from "./migrations.js";
import type { Migration } from "./migrations.js";

/** What `openDatabase` needs to find, create and migrate a service's schema. */
export interface OpenDatabaseOptions {
  /** The owning service; one of each may run on an embedded data directory. */
  service: string;
  /** The Postgres schema the service owns: lower-case letters, digits and `_`. */
  schema: string;
  migrations: readonly Migration[];
  /** A PostgreSQL URL; without it the service uses the embedded cluster under `dataDir`. */
  databaseUrl?: string | undefined;
  /** Where the embedded cluster keeps its files; required without `databaseUrl`. */
  dataDir?: string | undefined;
  /** Connections in the service's pool (default 10). */
  poolSize?: number | undefined;
  logger?: StoreLogger | undefined;
}

const defaultPoolSize = 10;
const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;
const servicePattern = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Connects to the service's database (PostgreSQL at `databaseUrl`, or the
 * embedded cluster under `dataDir`, started if no process runs it yet),
 * creates its schema if missing and applies pending migrations in one
 * transaction before resolving.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const target = validateOptions(options);
  const { service, schema, logger } = options;
  const poolOptions = {
    max: options.poolSize ?? defaultPoolSize,
    onConnect: (client: ClientBase) => setSearchPath(client, schema),
  };
  let pool: pg.Pool;
  let shutdown: () => Promise<void>;
  if ("databaseUrl" in target) {
    pool = new pg.Pool({ ...poolOptions, connectionString: target.databaseUrl, application_name: `berth ${service}` });
    shutdown = () => pool.end();
  } else {
    const embedded = await useEmbedded(target.dataDir, service, logger);
    pool = new pg.Pool({ ...poolOptions, ...embedded.cluster, application_name: `berth ${service}${applicationNameSuffix}` });
    shutdown = async () => {
      await pool.end();
      await embedded.release();
    };
  }
  // Without a listener, a connection dropped while idle would crash the process.
  pool.on("error", (error) => logger?.warn("idle database connection failed", { schema, error }));
  const database = createPoolDatabase(pool, schema, shutdown);
  try {
    await database.transaction((tx) => applyMigrations(tx, schema, options.migrations, logger));
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}

/**
 * Takes the service's lock on the data directory (one of each service per
 * data directory: a second `npm start` on it is refused here) and a lease on
 * the embedded cluster.
 */
async function useEmbedded(dataDir: string, service: string, logger: StoreLogger | undefined) {
  warnAboutPgliteFiles(dataDir, service, logger);
  const lockPath = join(dataDir, `${service}.lock`);
  const lock = await tryLockFile(lockPath);
  if ("heldBy" in lock) {
    const who = lock.heldBy === process.pid ? "this process" : `process ${lock.heldBy}`;
    throw failedPrecondition(
      `the ${service} service already runs on the data directory ${dataDir} (${who}; lock ${lockPath}): stop it first, or set BERTH_DATA_DIR to another directory`,
    );
  }
  try {
    const lease = await useEmbeddedCluster(dataDir, logger);
    return {
      cluster: lease.cluster,
      async release() {
        try {
          await lease.release();
        } finally {
          await lock.release();
        }
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/**
 * Earlier versions kept each service's data in a PGlite database at
 * `<dataDir>/<service>/`. Those files are not read any more, nor touched.
 */
function warnAboutPgliteFiles(dataDir: string, service: string, logger: StoreLogger | undefined): void {
  const directory = join(dataDir, service);
  if (!existsSync(join(directory, "PG_VERSION"))) return;
  logger?.warn(
    `${directory} holds a PGlite database from an earlier berth, which is NOT read: the ${service} service now keeps its data ` +
      `in the embedded PostgreSQL cluster at ${clusterPaths(dataDir).pgdata}, and starts empty there. Nothing was deleted or converted. ` +
      `To start fresh without this warning, move the old data directory aside (mv ${dataDir} ${dataDir}.pglite) or set BERTH_DATA_DIR to a new directory.`,
    { directory },
  );
}

// Set per connection rather than in the URL, so that any URL the operator gives works unchanged.
async function setSearchPath(client: ClientBase, schema: string): Promise<void> {
  await client.query(`SET search_path TO "${schema}"`);
}

/** Checks every option and resolves where the database lives. */
function validateOptions(options: OpenDatabaseOptions): { databaseUrl: string } | { dataDir: string } {
  if (!servicePattern.test(options.service)) {
    throw invalidArgument("service", `must be lower-case letters, digits and '-', starting with a letter; got ${JSON.stringify(options.service)}`);
  }
  if (!schemaPattern.test(options.schema) || options.schema.startsWith("pg_")) {
    throw invalidArgument("schema", `must be lower-case letters, digits and '_', not starting with a digit or pg_; got ${JSON.stringify(options.schema)}`);
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
  return { dataDir: options.dataDir };
}
