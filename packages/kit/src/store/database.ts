import { AsyncLocalStorage } from "node:async_hooks";
import type { Pool, PoolClient, QueryResult, QueryResultRow } from "pg";
import { failedPrecondition } from "../errors.js";
import type { Logger } from "../logger.js";

/** Runs SQL: the database itself, or the `tx` of an open transaction. */
export interface Queryable {
  // `any` by default, as in pg itself: rows are typed where the caller names a row type.
  query<R extends QueryResultRow = any>(text: string, params?: unknown[]): Promise<QueryResult<R>>;
}

/** Which engine serves a database: a real PostgreSQL, or the embedded PGlite. */
export type DatabaseBackend = "postgres" | "pglite";

/** A service's own schema, migrated and ready; queries use unqualified table names. */
export interface Database extends Queryable {
  readonly schema: string;
  readonly backend: DatabaseBackend;
  /**
   * Runs `fn` in BEGIN/COMMIT on one connection, rolling back if it throws.
   * Inside `fn`, use only `tx`: the database's own `query` and `transaction`
   * are refused there (on PGlite they would wait forever for the connection
   * the transaction holds). Keep network calls out of `fn`, since on PGlite an
   * open transaction stalls every other query.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Ends the connections and, for PGlite, shuts the embedded database down. Safe to call twice. */
  close(): Promise<void>;
}

/** The part of the kit's Logger the store reports start-up and connection events to. */
export type StoreLogger = Pick<Logger, "info" | "warn">;

interface TransactionScope {
  open: boolean;
}

/**
 * Wraps a pool whose connections already have `search_path` set to `schema`.
 * `shutdown` runs once, on the first `close()`.
 */
export function createPoolDatabase(
  pool: Pool,
  schema: string,
  backend: DatabaseBackend,
  shutdown: () => Promise<void>,
): Database {
  const transactionScope = new AsyncLocalStorage<TransactionScope>();
  let closing: Promise<void> | undefined;

  function refuseInsideTransaction(method: string): void {
    if (transactionScope.getStore()?.open) {
      throw failedPrecondition(
        `database.${method}() called inside database.transaction() on schema ${schema}: use the transaction's tx`,
      );
    }
  }

  return {
    schema,
    backend,
    async query(text, params) {
      refuseInsideTransaction("query");
      return pool.query(text, params);
    },
    async transaction(fn) {
      refuseInsideTransaction("transaction");
      const client = await pool.connect();
      const scope: TransactionScope = { open: true };
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await transactionScope.run(scope, () => fn(transactionQueryable(client, scope)));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch((rollbackError: Error) => {
          broken = rollbackError;
        });
        throw error;
      } finally {
        scope.open = false;
        // A connection that could not roll back is discarded rather than reused mid-transaction.
        client.release(broken);
      }
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

function transactionQueryable(client: PoolClient, scope: TransactionScope): Queryable {
  return {
    async query(text, params) {
      if (!scope.open) {
        throw failedPrecondition("tx.query() called after its transaction ended");
      }
      return client.query(text, params);
    },
  };
}
