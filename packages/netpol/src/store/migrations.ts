import type { Migration } from "@berth/kit";

/** netpol's schema: the apps it learnt from the scheduler, and trust grants between them. */
export const netpolMigrations: Migration[] = [
  {
    id: 1,
    name: "apps, trust grants and the policy version",
    sql: `
      CREATE TABLE apps (
        name text PRIMARY KEY,
        team text NOT NULL,
        created_at_ms bigint NOT NULL,
        processes jsonb NOT NULL DEFAULT '[]'
      );
      CREATE INDEX apps_by_team ON apps (team);
      -- Both ends cascade: deleting an app removes it from every trust list, in both directions.
      CREATE TABLE trust (
        app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
        trusted_app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
        PRIMARY KEY (app, trusted_app),
        CHECK (app <> trusted_app)
      );
      CREATE INDEX trust_by_trusted_app ON trust (trusted_app);
      -- Versions of the compiled policy keep growing across restarts.
      CREATE TABLE policy_version (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        version bigint NOT NULL
      );
      INSERT INTO policy_version (version) VALUES (0);
    `,
  },
];
