import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { RtcAllocationSchema } from "@berth/proto/type/v1/network";
import type { RtcAllocation } from "@berth/proto/type/v1/network";
import { RtcExposureSchema } from "@berth/proto/type/v1/process";
import { replicaHostname, replicaNumber } from "@berth/kit";
import { replicaHostnames, turnHostname } from "./names.js";
import type { AllocationRow } from "./store/allocation-store.js";

/** What names and the realm are derived from. */
export interface Naming {
  platformDomain: string;
  realm: string;
}

/** An allocation as callers see it: names and times, never a secret. */
export function allocationView(row: AllocationRow, naming: Naming, now: Date): RtcAllocation {
  const graceOpen = row.previousSecretValidUntil !== undefined && row.previousSecretValidUntil > now;
  return create(RtcAllocationSchema, {
    team: row.team,
    app: row.app,
    processType: row.processType,
    exposure: create(RtcExposureSchema, {
      routeToken: row.routeToken,
      turnHostname: turnHostname(row.routeToken, naming.platformDomain),
      port: row.port,
      replicaHostnames: replicaHostnames(row.routeToken, row.replicas, naming.platformDomain),
      realm: naming.realm,
    }),
    replicas: row.replicas,
    allocatedAt: timestampFromDate(row.allocatedAt),
    secretRotatedAt: timestampFromDate(row.secretRotatedAt),
    previousSecretValidUntil: graceOpen ? timestampFromDate(row.previousSecretValidUntil!) : undefined,
  });
}

/** The seven variables one replica of an rtc process runs with. */
export function replicaEnvironment(row: AllocationRow, replica: number, naming: Naming): Record<string, string> {
  return {
    TURN_SHARED_SECRET: row.secret,
    TURN_HOSTNAME: turnHostname(row.routeToken, naming.platformDomain),
    TURN_PORT: String(row.port),
    TURN_REALM: naming.realm,
    BERTH_RTC_PROCESS: row.processType,
    BERTH_RTC_REPLICA: replicaNumber(replica),
    BERTH_RTC_HOSTNAME: replicaHostname(row.routeToken, replica, naming.platformDomain),
  };
}
