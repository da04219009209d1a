import type { Queryable } from "@berth/kit";
import { alreadyExists } from "@berth/kit";

/** A team as stored. */
export interface TeamRow {
  name: string;
  createdAt: Date;
}

/** Teams: the owners of apps and tokens. */
export interface TeamsStore {
  /** Creates a team; ALREADY_EXISTS when the name is taken. */
  create(name: string): Promise<TeamRow>;
  list(): Promise<TeamRow[]>;
  get(name: string): Promise<TeamRow | undefined>;
}

const UNIQUE_VIOLATION = "23505";

/** Creates the teams store on the API's schema. */
export function createTeamsStore(db: Queryable): TeamsStore {
  const row = (r: { name: string; created_at: Date }): TeamRow => ({ name: r.name, createdAt: r.created_at });
  return {
    async create(name) {
      try {
        const result = await db.query("INSERT INTO teams (name) VALUES ($1) RETURNING name, created_at", [name]);
        return row(result.rows[0]);
      } catch (error) {
        if ((error as { code?: string }).code === UNIQUE_VIOLATION) throw alreadyExists(`team "${name}" already exists`);
        throw error;
      }
    },
    async list() {
      const result = await db.query("SELECT name, created_at FROM teams ORDER BY name");
      return result.rows.map(row);
    },
    async get(name) {
      const result = await db.query("SELECT name, created_at FROM teams WHERE name = $1", [name]);
      return result.rows[0] ? row(result.rows[0]) : undefined;
    },
  };
}
