import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { createReconcileLoop, runWhileLeader } from "@berth/kit";
import type { Coordination, Logger } from "@berth/kit";
import { followAllocationChanges } from "../allocation-changes.js";
import { desiredGateways } from "../gateway/gateway-spec.js";
import type { GatewayEngine } from "../gateway/gateway-spec.js";
import type { AllocationStore } from "../store/allocation-store.js";

/** Options of startGatewayReconciler. */
export interface GatewayReconcilerOptions {
  store: Pick<AllocationStore, "list">;
  engine: GatewayEngine;
  realm: string;
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
 * slow resync re-read all allocations and converge the gateways on them.
 * Only the instance holding the gateway lease runs gateways, so two
 * allocators never start two gateways on one port.
 */
export function startGatewayReconciler(options: GatewayReconcilerOptions): GatewayReconciler {
  const { logger, engine } = options;
  const stopped = new AbortController();
  let leading = false;
  const loop = createReconcileLoop({
    name: "gateway",
    logger,
    retryMs: options.retryMs,
    active: () => leading,
    async pass() {
      const { specs, nextExpiry } = desiredGateways(await options.store.list(), options.realm, new Date());
      await engine.apply(specs);
      const resyncMs = options.resyncMs ?? 60_000;
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
