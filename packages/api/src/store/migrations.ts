import type { Migration } from "@berth/kit";

/** The API's schema: teams, hashed tokens, request ids for idempotency, upload ownership and the audit log. */
export const apiMigrations: Migration[] = [
  {
    id: 1,
    name: "teams, tokens, request ids, source uploads, audit log",
    sql: `
      CREATE TABLE teams (
        name text PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE tokens (
        id text PRIMARY KEY,
        team text REFERENCES teams (name),
        admin boolean NOT NULL DEFAULT false,
        description text NOT NULL DEFAULT '',
        secret_sha256 text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz,
        CHECK (admin OR team IS NOT NULL)
      );
      CREATE INDEX tokens_team ON tokens (team);
      CREATE TABLE request_ids (
        owner text NOT NULL,
        method text NOT NULL,
        request_id text NOT NULL,
        fingerprint text NOT NULL,
        response bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (owner, method, request_id)
      );
      CREATE TABLE source_uploads (
        upload_id text PRIMARY KEY,
        team text NOT NULL,
        app text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE audit_events (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        token_id text NOT NULL,
        team text,
        rpc text NOT NULL,
        app text NOT NULL DEFAULT '',
        request_id text NOT NULL DEFAULT '',
        code text NOT NULL,
        message text NOT NULL DEFAULT ''
      );
      CREATE INDEX audit_events_team ON audit_events (team, id);
    `,
  },
];
