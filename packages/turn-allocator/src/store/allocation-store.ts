import { randomBytes } from "node:crypto";
import { resourceExhausted } from "@berth/kit";
import type { Database, Queryable } from "@berth/kit";
import { newRouteToken } from "../names.js";
import { formatPortRange, rangeSize } from "../port-range.js";
import type { PortRange } from "../port-range.js";

/** Everything reserved for one rtc process, secrets included: never log a whole row. */
export interface AllocationRow {
  team: string;
  app: string;
  processType: string;
  port: number;
  relayRange: PortRange;
  routeToken: string;
  replicas: number;
  secret: string;
  /** Set while the secret before the last rotation is still accepted. */
  previousSecret: string | undefined;
  previousSecretValidUntil: Date | undefined;
  secretRotatedAt: Date;
  allocatedAt: Date;
  /** The gateway serves TLS (turns:) with a certificate for its TURN hostname. */
  tlsReady: boolean;
}

/** The pools allocations are carved from, as configured now. */
export interface Pools {
  portRange: PortRange;
  relayRange: PortRange;
  relayPortsPerGateway: number;
}

/** What EnsureAllocation asks for. */
export interface AllocationRequest {
  team: string;
  app: string;
  processType: string;
  replicas: number;
}

/** The turn-allocator's queries over its own schema. */
export interface AllocationStore {
  /**
   * The allocation of a process, created with the lowest free port and relay
   * range when it has none (atomically: concurrent callers, in this process
   * or another, never get the same port). An existing one keeps its port and
   * token; only its replica count follows the request.
   */
  ensure(request: AllocationRequest, pools: Pools): Promise<{ allocation: AllocationRow; created: boolean }>;
  get(app: string, processType: string): Promise<AllocationRow | undefined>;
  /** Every allocation, or those of one app, ordered by app and process type. */
  list(app?: string): Promise<AllocationRow[]>;
  /** Frees the process's port and relay range and forgets its secrets; undefined when it had none. */
  release(app: string, processType: string): Promise<AllocationRow | undefined>;
  /** Releases every allocation of an app; returns the released ones. */
  releaseApp(app: string): Promise<AllocationRow[]>;
  /** A new secret; the current one stays valid until `graceSeconds` from now. Undefined when there is no allocation. */
  rotate(app: string, processType: string, graceSeconds: number): Promise<AllocationRow | undefined>;
  /** How many allocations hold a port, within the range or outside it (the range may have shrunk). */
  countAllocated(): Promise<number>;
  /** Records whether the process's gateway serves TLS; false when that was known already (or it has no allocation). */
  setTlsReady(app: string, processType: string, ready: boolean): Promise<boolean>;
}

interface Row {
  team: string;
  app: string;
  process_type: string;
  port: number;
  relay_first: number;
  relay_last: number;
  route_token: string;
  replicas: number;
  secret: string;
  previous_secret: string | null;
  previous_secret_valid_until: Date | null;
  secret_rotated_at: Date;
  allocated_at: Date;
  tls_ready: boolean;
}

const COLUMNS =
  "team, app, process_type, port, relay_first, relay_last, route_token, replicas, secret, previous_secret, previous_secret_valid_until, secret_rotated_at, allocated_at, tls_ready";

function toAllocation(row: Row): AllocationRow {
  return {
    team: row.team,
    app: row.app,
    processType: row.process_type,
    port: row.port,
    relayRange: { first: row.relay_first, last: row.relay_last },
    routeToken: row.route_token,
    replicas: row.replicas,
    secret: row.secret,
    previousSecret: row.previous_secret ?? undefined,
    previousSecretValidUntil: row.previous_secret_valid_until ?? undefined,
    secretRotatedAt: row.secret_rotated_at,
    allocatedAt: row.allocated_at,
    tlsReady: row.tls_ready,
  };
}

/** A new shared secret: 256 bits from the CSPRNG, base64url so it needs no quoting anywhere. */
export function newSharedSecret(): string {
  return randomBytes(32).toString("base64url");
}

// The lowest free port is the range's first or one right after an allocated port: looking only
// there keeps each allocation to a few index probes per allocation, not a scan of the whole range.
async function lowestFreePort(tx: Queryable, range: PortRange): Promise<number | undefined> {
  const { rows } = await tx.query<{ port: number }>(
    `SELECT c.p AS port FROM (
        SELECT $1::int AS p
        UNION ALL SELECT port + 1 FROM allocations WHERE port >= $1::int AND port < $2::int
      ) AS c
      WHERE NOT EXISTS (SELECT 1 FROM allocations WHERE port = c.p) ORDER BY c.p LIMIT 1`,
    [range.first, range.last],
  );
  return rows[0]?.port;
}

// Likewise a free relay range starts at the pool's first port or right after another range ends.
async function lowestFreeRelayRange(tx: Queryable, pools: Pools): Promise<PortRange | undefined> {
  const size = pools.relayPortsPerGateway;
  const { rows } = await tx.query<{ first: number }>(
    `SELECT c.f AS first FROM (
        SELECT $1::int AS f
        UNION ALL SELECT relay_last + 1 FROM allocations WHERE relay_last + 1 >= $1::int AND relay_last + $3::int <= $2::int
      ) AS c
      WHERE c.f + $3::int - 1 <= $2::int
        AND NOT EXISTS (
          SELECT 1 FROM allocations
           WHERE int4range(relay_first, relay_last, '[]') && int4range(c.f, c.f + $3::int - 1, '[]'))
      ORDER BY c.f LIMIT 1`,
    [pools.relayRange.first, pools.relayRange.last, size],
  );
  const first = rows[0]?.first;
  return first === undefined ? undefined : { first, last: first + size - 1 };
}

/** The queries of the turn-allocator's schema on `database`. */
export function createAllocationStore(database: Database): AllocationStore {
  const select = async (where: string, params: unknown[]) =>
    (await database.query<Row>(`SELECT ${COLUMNS} FROM allocations ${where}`, params)).rows.map(toAllocation);

  return {
    ensure(request, pools) {
      return database.transaction(async (tx) => {
        // One allocation at a time per schema, across every allocator instance:
        // choosing the lowest free port and taking it must not interleave.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema()))");
        const existing = await tx.query<Row>(`UPDATE allocations SET replicas = $3, team = $4 WHERE app = $1 AND process_type = $2 RETURNING ${COLUMNS}`, [
          request.app,
          request.processType,
          request.replicas,
          request.team,
        ]);
        if (existing.rows[0]) return { allocation: toAllocation(existing.rows[0]), created: false };
        const port = await lowestFreePort(tx, pools.portRange);
        if (port === undefined) {
          throw resourceExhausted(`the TURN port pool ${formatPortRange(pools.portRange)} is exhausted: all ${rangeSize(pools.portRange)} ports are allocated`);
        }
        const relay = await lowestFreeRelayRange(tx, pools);
        if (relay === undefined) {
          throw resourceExhausted(
            `the TURN relay pool ${formatPortRange(pools.relayRange)} is exhausted: all ${Math.floor(rangeSize(pools.relayRange) / pools.relayPortsPerGateway)} ranges of ${pools.relayPortsPerGateway} ports are allocated`,
          );
        }
        const inserted = await tx.query<Row>(
          `INSERT INTO allocations (team, app, process_type, port, relay_first, relay_last, route_token, replicas, secret)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
          [request.team, request.app, request.processType, port, relay.first, relay.last, newRouteToken(), request.replicas, newSharedSecret()],
        );
        return { allocation: toAllocation(inserted.rows[0]!), created: true };
      });
    },
    async get(app, processType) {
      return (await select("WHERE app = $1 AND process_type = $2", [app, processType]))[0];
    },
    list(app) {
      return app === undefined ? select("ORDER BY app, process_type", []) : select("WHERE app = $1 ORDER BY process_type", [app]);
    },
    async release(app, processType) {
      const { rows } = await database.query<Row>(`DELETE FROM allocations WHERE app = $1 AND process_type = $2 RETURNING ${COLUMNS}`, [app, processType]);
      return rows[0] && toAllocation(rows[0]);
    },
    async releaseApp(app) {
      const { rows } = await database.query<Row>(`DELETE FROM allocations WHERE app = $1 RETURNING ${COLUMNS}`, [app]);
      return rows.map(toAllocation);
    },
    async rotate(app, processType, graceSeconds) {
      const { rows } = await database.query<Row>(
        `UPDATE allocations
            SET previous_secret = secret,
                previous_secret_valid_until = now() + make_interval(secs => $3::int),
                secret = $4,
                secret_rotated_at = now()
          WHERE app = $1 AND process_type = $2
          RETURNING ${COLUMNS}`,
        [app, processType, graceSeconds, newSharedSecret()],
      );
      return rows[0] && toAllocation(rows[0]);
    },
    async setTlsReady(app, processType, ready) {
      const result = await database.query("UPDATE allocations SET tls_ready = $3 WHERE app = $1 AND process_type = $2 AND tls_ready <> $3", [
        app,
        processType,
        ready,
      ]);
      return (result.rowCount ?? 0) > 0;
    },
    async countAllocated() {
      const { rows } = await database.query<{ count: string }>("SELECT count(*) AS count FROM allocations");
      return Number(rows[0]!.count);
    },
  };
}
