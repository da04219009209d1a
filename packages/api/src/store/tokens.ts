import type { Database } from "@berth/kit";

/** What a new token is stored with: never the secret, only its sha256. */
export interface NewToken {
  id: string;
  team: string | undefined;
  admin: boolean;
  description: string;
  secretSha256: string;
}

/** A token as stored. */
export interface TokenRow extends NewToken {
  createdAt: Date;
  lastUsedAt: Date | undefined;
  revokedAt: Date | undefined;
}

/** Bearer tokens, looked up by id and compared by hash. */
export interface TokensStore {
  insert(token: NewToken): Promise<TokenRow>;
  /** Creates or replaces an admin token under a fixed id (the operator's own). */
  putAdmin(id: string, secretSha256: string, description: string): Promise<void>;
  /** A token that exists and is not revoked. */
  findActive(id: string): Promise<TokenRow | undefined>;
  /** Whether any admin token is still active. */
  hasActiveAdmin(): Promise<boolean>;
  /** Active tokens of a team, or the admin tokens when `team` is undefined. */
  listActive(team: string | undefined): Promise<TokenRow[]>;
  /**
   * Revokes an active token unless it is the last active admin token, as one
   * transaction holding every active admin token's row lock, so that two
   * admins revoking each other at once cannot both succeed.
   */
  revokeKeepingAnAdmin(id: string): Promise<"revoked" | "last-admin" | "not-found">;
  touch(id: string, at: Date): Promise<void>;
}

interface Row {
  id: string;
  team: string | null;
  admin: boolean;
  description: string;
  secret_sha256: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = "id, team, admin, description, secret_sha256, created_at, last_used_at, revoked_at";

function tokenRow(r: Row): TokenRow {
  return {
    id: r.id,
    team: r.team ?? undefined,
    admin: r.admin,
    description: r.description,
    secretSha256: r.secret_sha256,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at ?? undefined,
    revokedAt: r.revoked_at ?? undefined,
  };
}

/** Creates the tokens store on the API's schema. */
export function createTokensStore(db: Database): TokensStore {
  return {
    async insert(token) {
      const result = await db.query<Row>(`INSERT INTO tokens (id, team, admin, description, secret_sha256) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`, [
        token.id,
        token.team ?? null,
        token.admin,
        token.description,
        token.secretSha256,
      ]);
      return tokenRow(result.rows[0]!);
    },
    async putAdmin(id, secretSha256, description) {
      await db.query(
        `INSERT INTO tokens (id, team, admin, description, secret_sha256) VALUES ($1, NULL, true, $2, $3)
         ON CONFLICT (id) DO UPDATE SET secret_sha256 = EXCLUDED.secret_sha256, revoked_at = NULL`,
        [id, description, secretSha256],
      );
    },
    async findActive(id) {
      const result = await db.query<Row>(`SELECT ${COLUMNS} FROM tokens WHERE id = $1 AND revoked_at IS NULL`, [id]);
      return result.rows[0] ? tokenRow(result.rows[0]) : undefined;
    },
    async hasActiveAdmin() {
      const result = await db.query("SELECT 1 FROM tokens WHERE admin AND revoked_at IS NULL LIMIT 1");
      return result.rows.length > 0;
    },
    async listActive(team) {
      const result =
        team === undefined
          ? await db.query<Row>(`SELECT ${COLUMNS} FROM tokens WHERE admin AND revoked_at IS NULL ORDER BY created_at, id`)
          : await db.query<Row>(`SELECT ${COLUMNS} FROM tokens WHERE team = $1 AND revoked_at IS NULL ORDER BY created_at, id`, [team]);
      return result.rows.map(tokenRow);
    },
    revokeKeepingAnAdmin(id) {
      return db.transaction(async (tx) => {
        // A concurrent revoke waits on these locks, then sees this one's revocation.
        const admins = await tx.query<{ id: string }>("SELECT id FROM tokens WHERE admin AND revoked_at IS NULL ORDER BY id FOR UPDATE");
        if (admins.rows.length === 1 && admins.rows[0]!.id === id) return "last-admin";
        const result = await tx.query("UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", [id]);
        return (result.rowCount ?? 0) > 0 ? "revoked" : "not-found";
      });
    },
    async touch(id, at) {
      await db.query("UPDATE tokens SET last_used_at = $2 WHERE id = $1", [id, at]);
    },
  };
}
