import type { Pool, PoolClient, QueryResult, QueryResultRow } from "pg";
import { failedPrecondition } from "../errors.js";
import type { Logger } from "../logger.js";

/** Runs SQL: the database itself, or the `tx` of an open transaction. */
export interface Queryable {
  // `any` by default, as in pg itself: rows are typed where the caller names a row type.
  query<R extends QueryResultRow = any>(text: string, params?: unknown[]): Promise<QueryResult<R>>;
}

/** A service's own schema, migrated and ready; queries use unqualified table names. */
export interface Database extends Queryable {
  readonly schema: string;
  /**
   * Runs `fn` in BEGIN/COMMIT on one connection of the pool, rolling back if
   * it throws. Statements inside belong to the transaction only through `tx`;
   * the database's own `query` runs on another connection, outside it.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Ends the connections (and releases the embedded cluster, if it is one). Safe to call twice. */
  close(): Promise<void>;
}

/** The part of the kit's Logger the store reports start-up and connection events to. */
export type StoreLogger = Pick<Logger, "info" | "warn">;

/**
 * Wraps a pool whose connections already have `search_path` set to `schema`.
 * `shutdown` runs once, on the first `close()`.
 */
export function createPoolDatabase(pool: Pool, schema: string, shutdown: () => Promise<void>): Database {
  let closing: Promise<void> | undefined;
  return {
    schema,
    query: (text, params) => pool.query(text, params),
    async transaction(fn) {
      const client = await pool.connect();
      const scope = { open: true };
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn(transactionQueryable(client, scope));
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

function transactionQueryable(client: PoolClient, scope: { open: boolean }): Queryable {
  return {
    async query(text, params) {
      // The connection went back to the pool: a statement now would run in someone else's transaction.
      if (!scope.open) {
        throw failedPrecondition("tx.query() called after its transaction ended");
      }
      return client.query(text, params);
    },
  };
}
