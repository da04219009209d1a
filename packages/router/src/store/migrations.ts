import type { Migration } from "@berth/kit";

/** The router's schema: routes, custom domains, certificates and ACME state. */
export const routerMigrations: Migration[] = [
  {
    id: 1,
    name: "routes, domains, certificates, acme accounts and challenges, platform CA",
    sql: `
      CREATE TABLE routes (
        hostname text PRIMARY KEY,
        team text NOT NULL,
        app text NOT NULL,
        process_type text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (app, process_type)
      );
      CREATE TABLE domains (
        hostname text PRIMARY KEY,
        app text NOT NULL,
        process_type text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX domains_by_app ON domains (app, process_type);
      CREATE TABLE certificates (
        hostname text PRIMARY KEY,
        state text NOT NULL,
        issuer text NOT NULL DEFAULT '',
        certificate_pem text,
        private_key_pem text,
        not_before timestamptz,
        not_after timestamptz,
        last_error text NOT NULL DEFAULT '',
        last_attempt_at timestamptz,
        failures integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE acme_accounts (
        directory_url text PRIMARY KEY,
        account_key_pem text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE acme_challenges (
        token text PRIMARY KEY,
        key_authorization text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE platform_ca (
        id integer PRIMARY KEY CHECK (id = 1),
        certificate_pem text NOT NULL,
        private_key_pem text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    id: 2,
    name: "routes: one per replica of an rtc process",
    sql: `
      -- 0 is a process's own route; 1, 2, ... the per-replica hostnames of an rtc process.
      ALTER TABLE routes ADD COLUMN replica integer NOT NULL DEFAULT 0;
      ALTER TABLE routes DROP CONSTRAINT routes_app_process_type_key;
      ALTER TABLE routes ADD CONSTRAINT routes_app_process_type_replica_key UNIQUE (app, process_type, replica);
    `,
  },
  {
    id: 3,
    name: "TURN hostnames that get a certificate",
    sql: `
      -- <token>.turn.<platform domain> of each TURN gateway, as the TURN allocator last synced them.
      CREATE TABLE turn_hostnames (
        hostname text PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];
