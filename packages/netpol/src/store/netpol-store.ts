import type { Database, Queryable } from "@berth/kit";
import type { AppChanges } from "../model-changes.js";
import type { AppEntry, PolicyModel, ProcessEntry } from "../policy-model.js";

/** netpol's durable state: apps learnt from the scheduler and trust lists. */
export interface NetpolStore {
  /** Everything, with the version of the policy it compiles to. */
  load(): Promise<{ model: PolicyModel; version: bigint }>;
  /** Records the scheduler's news (see withAppChanges for the rules); returns the new policy version. */
  applyAppChanges(changes: AppChanges): Promise<bigint>;
  /** Makes `app`'s trust list exactly `trusted`; returns the new policy version. */
  replaceTrust(app: string, trusted: readonly string[]): Promise<bigint>;
  /** Takes `app` off every trust list and empties its own; returns the new policy version. */
  forgetTrust(app: string): Promise<bigint>;
}

interface AppRow {
  name: string;
  team: string;
  created_at_ms: string;
  processes: ProcessEntry[];
}

async function nextVersion(tx: Queryable): Promise<bigint> {
  const { rows } = await tx.query<{ version: string }>("UPDATE policy_version SET version = version + 1 RETURNING version");
  return BigInt(rows[0]!.version);
}

const dropTrustOf = (tx: Queryable, names: readonly string[]) =>
  tx.query("DELETE FROM trust WHERE app = ANY($1::text[]) OR trusted_app = ANY($1::text[])", [names]);

/** The store on the service's own schema. */
export function createNetpolStore(database: Database): NetpolStore {
  return {
    async load() {
      const [apps, trust, version] = await Promise.all([
        database.query<AppRow>("SELECT name, team, created_at_ms, processes FROM apps"),
        database.query<{ app: string; trusted_app: string }>("SELECT app, trusted_app FROM trust ORDER BY app, trusted_app"),
        database.query<{ version: string }>("SELECT version FROM policy_version"),
      ]);
      const lists = new Map<string, string[]>();
      for (const row of trust.rows) {
        const list = lists.get(row.app) ?? [];
        list.push(row.trusted_app);
        lists.set(row.app, list);
      }
      const appEntries = new Map<string, AppEntry>(
        apps.rows.map((row) => [row.name, { name: row.name, team: row.team, createdAtMs: Number(row.created_at_ms), processes: row.processes }]),
      );
      return { model: { apps: appEntries, trust: lists }, version: BigInt(version.rows[0]!.version) };
    },
    applyAppChanges(changes) {
      return database.transaction(async (tx) => {
        if (changes.snapshot) {
          await tx.query("DELETE FROM apps WHERE NOT (name = ANY($1::text[]))", [changes.apps.map((app) => app.name)]);
        }
        if (changes.deleted.length > 0) await tx.query("DELETE FROM apps WHERE name = ANY($1::text[])", [changes.deleted]);
        if (changes.apps.length > 0) {
          const rows = JSON.stringify(
            changes.apps.map((app) => ({ name: app.name, team: app.team, created_at_ms: app.createdAtMs, processes: app.processes })),
          );
          // A new creation time is a new app of an old name: it inherits no trust.
          const { rows: reborn } = await tx.query<{ name: string }>(
            `SELECT a.name FROM apps a JOIN jsonb_to_recordset($1::jsonb) AS n(name text, created_at_ms bigint) ON n.name = a.name
             WHERE a.created_at_ms <> n.created_at_ms`,
            [rows],
          );
          if (reborn.length > 0)
            await dropTrustOf(
              tx,
              reborn.map((row) => row.name),
            );
          await tx.query(
            `INSERT INTO apps (name, team, created_at_ms, processes)
             SELECT name, team, created_at_ms, processes FROM jsonb_to_recordset($1::jsonb) AS n(name text, team text, created_at_ms bigint, processes jsonb)
             ON CONFLICT (name) DO UPDATE SET team = excluded.team, created_at_ms = excluded.created_at_ms, processes = excluded.processes`,
            [rows],
          );
        }
        return nextVersion(tx);
      });
    },
    replaceTrust(app, trusted) {
      return database.transaction(async (tx) => {
        await tx.query("DELETE FROM trust WHERE app = $1", [app]);
        if (trusted.length > 0) {
          await tx.query("INSERT INTO trust (app, trusted_app) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING", [app, [...trusted]]);
        }
        return nextVersion(tx);
      });
    },
    forgetTrust(app) {
      return database.transaction(async (tx) => {
        await dropTrustOf(tx, [app]);
        return nextVersion(tx);
      });
    },
  };
}
