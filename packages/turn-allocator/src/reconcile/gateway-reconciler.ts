import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { createReconcileLoop, runWhileLeader } from "@berth/kit";
import type { Coordination, Logger } from "@berth/kit";
import { followAllocationChanges } from "../allocation-changes.js";
import { desiredGateways } from "../gateway/gateway-spec.js";
import type { GatewayEngine, GatewaySpec, GatewayTls } from "../gateway/gateway-spec.js";
import { turnHostname } from "../names.js";
import type { AllocationStore } from "../store/allocation-store.js";

/** The certificates (with keys) of those TURN hostnames that have one issued; the others are still pending. */
export type TurnCertificateSource = (hostnames: string[]) => Promise<Map<string, GatewayTls>>;

/** Options of startGatewayReconciler. */
export interface GatewayReconcilerOptions {
  store: Pick<AllocationStore, "list" | "setTlsReady">;
  engine: GatewayEngine;
  realm: string;
  /** Where gateways' certificates come from (the router); without it gateways serve no TLS. */
  certificates?: TurnCertificateSource;
  platformDomain: string;
  /** Announces that an app's allocations changed (here: whether its gateways serve TLS). */
  announceChange(app: string): Promise<void>;
  /** How soon to ask again while a certificate is pending. */
  certificateRetryMs?: number;
  coordination: Coordination;
  logger: Logger;
  /** A slow periodic pass that repairs drift; events drive everything else. */
  resyncMs?: number;
  leaseTtlMs?: number;
  /** First retry after a failed pass, doubling up to a minute. */
  retryMs?: number;
}

/** The running reconciler. */
export interface GatewayReconciler {
  /** Resolves when a pass that started after this call has finished (at once when not leading). */
  kick(): Promise<void>;
  close(): Promise<void>;
}

const LEASE = "turn-allocator:gateways";

/**
 * Level-triggered: every announced change, the end of a grace period and a
 * slow resync re-read all allocations and converge the gateways on them,
 * each with the certificate of its TURN hostname once the router issued it
 * (asked again every few seconds while one is pending).
 * Only the instance holding the gateway lease runs gateways, so two
 * allocators never start two gateways on one port.
 */
export function startGatewayReconciler(options: GatewayReconcilerOptions): GatewayReconciler {
  const { logger, engine } = options;
  const stopped = new AbortController();
  let leading = false;
  // The certificates last answered: a router that cannot be reached does not take TLS away (which would restart gateways).
  let knownCertificates = new Map<string, GatewayTls>();

  /** Gives each spec its certificate; true while one is still pending. */
  async function attachCertificates(specs: GatewaySpec[]): Promise<boolean> {
    if (!options.certificates) return false;
    const hostnames = specs.map((spec) => turnHostname(spec.routeToken, options.platformDomain));
    try {
      knownCertificates = await options.certificates(hostnames);
    } catch (error) {
      logger.warn("could not sync the TURN certificates with the router; keeping those known", { error });
    }
    for (const [index, spec] of specs.entries()) spec.tls = knownCertificates.get(hostnames[index]!);
    return specs.some((spec) => spec.tls === undefined);
  }

  const loop = createReconcileLoop({
    name: "gateway",
    logger,
    retryMs: options.retryMs,
    active: () => leading,
    async pass() {
      const rows = await options.store.list();
      const { specs, nextExpiry } = desiredGateways(rows, options.realm, new Date());
      const pending = await attachCertificates(specs);
      await engine.apply(specs);
      // Minting offers turns: only for gateways that serve TLS now.
      for (const [index, spec] of specs.entries()) {
        const row = rows[index]!;
        if (await options.store.setTlsReady(row.app, row.processType, spec.tls !== undefined)) await options.announceChange(row.app);
      }
      const resync = options.resyncMs ?? 60_000;
      const resyncMs = pending ? Math.min(resync, options.certificateRetryMs ?? 5_000) : resync;
      const untilExpiry = nextExpiry === undefined ? resyncMs : Math.min(resyncMs, nextExpiry.getTime() - Date.now() + 10);
      loop.wakeIn(Math.max(10, untilExpiry));
    },
  });
  const kick = loop.kick;

  const campaign = runWhileLeader(
    {
      leases: options.coordination.leases,
      name: LEASE,
      holder: `${hostname()}:${process.pid}:${randomBytes(6).toString("hex")}`,
      ttlMs: options.leaseTtlMs ?? 15_000,
      signal: stopped.signal,
      logger,
    },
    async (leadership) => {
      logger.info("leading the TURN gateways");
      leading = true;
      const following = followAllocationChanges(options.coordination.events, leadership, logger, () => void kick());
      await kick();
      await new Promise<void>((resolve) => leadership.addEventListener("abort", () => resolve(), { once: true }));
      leading = false;
      loop.wakeIn(undefined);
      await following;
      await loop.idle();
      await engine.close();
    },
  );

  return {
    kick,
    async close() {
      stopped.abort();
      loop.close();
      await campaign;
    },
  };
}
