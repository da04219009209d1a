export { openDatabase } from "./open-database.js";
export type { OpenDatabaseOptions } from "./open-database.js";
export type { Database, DatabaseBackend, Queryable, StoreLogger } from "./database.js";
export type { Migration } from "./migrations.js";
