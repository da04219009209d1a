import type { Migration } from "@berth/kit";

/** The turn-allocator's schema: one row per rtc process with its port, relay range, token and secrets. */
export const turnAllocatorMigrations: Migration[] = [
  {
    id: 1,
    name: "allocations: unique public ports, non-overlapping relay ranges, route tokens, secrets",
    sql: `
      CREATE TABLE allocations (
        app text NOT NULL,
        process_type text NOT NULL,
        team text NOT NULL,
        port integer NOT NULL UNIQUE,
        relay_first integer NOT NULL,
        relay_last integer NOT NULL CHECK (relay_last >= relay_first),
        route_token text NOT NULL UNIQUE,
        replicas integer NOT NULL,
        secret text NOT NULL,
        previous_secret text,
        previous_secret_valid_until timestamptz,
        secret_rotated_at timestamptz NOT NULL DEFAULT now(),
        allocated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (app, process_type),
        EXCLUDE USING gist (int4range(relay_first, relay_last, '[]') WITH &&)
      );
    `,
  },
  {
    id: 2,
    name: "allocations: whether the gateway serves TLS",
    sql: `
      -- Set once the gateway listens for TLS with a certificate for its TURN hostname: credentials then carry turns: URLs.
      ALTER TABLE allocations ADD COLUMN tls_ready boolean NOT NULL DEFAULT false;
    `,
  },
];
