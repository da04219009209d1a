export { openDatabase } from "./open-database.js";
export type { OpenDatabaseOptions } from "./open-database.js";
export type { Database, Queryable, StoreLogger } from "./database.js";
export type { Migration } from "./migrations.js";
export { useEmbeddedCluster } from "./embedded-cluster.js";
export type { ClusterLease, EmbeddedCluster } from "./embedded-cluster.js";
