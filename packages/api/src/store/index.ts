import { openDatabase } from "@berth/kit";
import type { Database, StoreLogger } from "@berth/kit";
import { createAuditLog } from "./audit-log.js";
import type { AuditLog } from "./audit-log.js";
import { apiMigrations } from "./migrations.js";
import { createRequestIdsStore } from "./request-ids.js";
import type { RequestIdsStore } from "./request-ids.js";
import { createSourceUploadsStore } from "./source-uploads.js";
import type { SourceUploadsStore } from "./source-uploads.js";
import { createTeamsStore } from "./teams.js";
import type { TeamsStore } from "./teams.js";
import { createTokensStore } from "./tokens.js";
import type { TokensStore } from "./tokens.js";

export type { AuditEvent, AuditLog, AuditRecord } from "./audit-log.js";
export type { RequestIdKey, RequestIdsStore, RememberedResponse } from "./request-ids.js";
export type { SourceUploadOwner, SourceUploadsStore } from "./source-uploads.js";
export type { TeamRow, TeamsStore } from "./teams.js";
export type { NewToken, TokenRow, TokensStore } from "./tokens.js";

/** Everything the API keeps in its own schema. */
export interface ApiStore {
  readonly database: Database;
  readonly teams: TeamsStore;
  readonly tokens: TokensStore;
  readonly requestIds: RequestIdsStore;
  readonly sourceUploads: SourceUploadsStore;
  readonly audit: AuditLog;
  close(): Promise<void>;
}

/** Options of openApiStore. */
export interface OpenApiStoreOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  /** The Postgres schema; "api" unless a test isolates itself. */
  schema?: string;
  logger?: StoreLogger;
}

/** Opens (and migrates) the API's schema. */
export async function openApiStore(options: OpenApiStoreOptions): Promise<ApiStore> {
  const database = await openDatabase({
    service: "api",
    schema: options.schema ?? "api",
    migrations: apiMigrations,
    databaseUrl: options.databaseUrl,
    dataDir: options.dataDir,
    logger: options.logger,
  });
  return {
    database,
    teams: createTeamsStore(database),
    tokens: createTokensStore(database),
    requestIds: createRequestIdsStore(database),
    sourceUploads: createSourceUploadsStore(database),
    audit: createAuditLog(database),
    close: () => database.close(),
  };
}
