import type { Queryable } from "@berth/kit";

/** One mutating call: who made it, on what, and how it ended. */
export interface AuditEvent {
  tokenId: string;
  team: string | undefined;
  /** "berth.api.v1.AppService/CreateApp". */
  rpc: string;
  app: string;
  requestId: string;
  /** The gRPC code name: "OK", "INVALID_ARGUMENT"... */
  code: string;
  message: string;
}

/** A recorded audit event. */
export interface AuditRecord extends AuditEvent {
  id: number;
  at: Date;
}

/** The append-only log of mutating calls. */
export interface AuditLog {
  record(event: AuditEvent): Promise<void>;
  /** The newest events first; of one team when `team` is set. */
  list(options: { team?: string; limit: number }): Promise<AuditRecord[]>;
}

interface Row {
  id: string;
  at: Date;
  token_id: string;
  team: string | null;
  rpc: string;
  app: string;
  request_id: string;
  code: string;
  message: string;
}

/** Creates the audit log on the API's schema. */
export function createAuditLog(db: Queryable): AuditLog {
  return {
    async record(event) {
      await db.query("INSERT INTO audit_events (token_id, team, rpc, app, request_id, code, message) VALUES ($1, $2, $3, $4, $5, $6, $7)", [
        event.tokenId,
        event.team ?? null,
        event.rpc,
        event.app,
        event.requestId,
        event.code,
        event.message,
      ]);
    },
    async list({ team, limit }) {
      const result =
        team === undefined
          ? await db.query<Row>("SELECT * FROM audit_events ORDER BY id DESC LIMIT $1", [limit])
          : await db.query<Row>("SELECT * FROM audit_events WHERE team = $1 ORDER BY id DESC LIMIT $2", [team, limit]);
      return result.rows.map((r) => ({
        id: Number(r.id),
        at: r.at,
        tokenId: r.token_id,
        team: r.team ?? undefined,
        rpc: r.rpc,
        app: r.app,
        requestId: r.request_id,
        code: r.code,
        message: r.message,
      }));
    },
  };
}
