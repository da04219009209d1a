import type { PortRange } from "../port-range.js";
import type { AllocationRow } from "../store/allocation-store.js";

/** What one rtc process's TURN gateway runs with. */
export interface GatewaySpec {
  /** `<app>-<process>`: unique, and the name of its files or objects. */
  name: string;
  team: string;
  app: string;
  processType: string;
  port: number;
  relayRange: PortRange;
  realm: string;
  /** The secrets credentials may be signed with: the current one, then the previous one during its grace period. */
  secrets: string[];
  /** Its TURN hostname is `<routeToken>.turn.<platform domain>`. */
  routeToken: string;
  /** The certificate of its TURN hostname, once the router issued it: the gateway then also accepts TLS (turns:). */
  tls?: GatewayTls;
}

/** A gateway's certificate (the chain, leaf first) and key, in PEM. */
export interface GatewayTls {
  certificatePem: string;
  privateKeyPem: string;
}

/** The gateways that should run now, and when that changes by itself (a grace period ends). */
export interface DesiredGateways {
  specs: GatewaySpec[];
  /** The earliest moment a previous secret stops being valid; undefined when none is pending. */
  nextExpiry: Date | undefined;
}

/** The gateway of every allocation, as of `now`. Pure: the same rows and time give the same answer. */
export function desiredGateways(rows: readonly AllocationRow[], realm: string, now: Date): DesiredGateways {
  let nextExpiry: Date | undefined;
  const specs = rows.map((row) => {
    const secrets = [row.secret];
    const until = row.previousSecretValidUntil;
    if (row.previousSecret !== undefined && until !== undefined && until > now) {
      secrets.push(row.previousSecret);
      if (nextExpiry === undefined || until < nextExpiry) nextExpiry = until;
    }
    return {
      name: `${row.app}-${row.processType}`,
      team: row.team,
      app: row.app,
      processType: row.processType,
      port: row.port,
      relayRange: row.relayRange,
      realm,
      secrets,
      routeToken: row.routeToken,
    };
  });
  return { specs, nextExpiry };
}

/** Runs TURN gateways: real turnserver processes, or coturn Deployments on a cluster. */
export interface GatewayEngine {
  /** Converges to exactly these gateways: starts, reconfigures and stops. Idempotent. */
  apply(specs: readonly GatewaySpec[]): Promise<void>;
  /** Stops every gateway this engine started in this process. */
  close(): Promise<void>;
}
