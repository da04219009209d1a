import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import type { Leases } from "./coordination.js";
import { checkLeaseArguments, requirePositiveInteger } from "./coordination-arguments.js";

/** Options of holdLease. */
export interface HoldLeaseOptions {
  leases: Leases;
  name: string;
  /** Unique per process, see Leases. */
  holder: string;
  /** How long the lease outlives its holder; it is renewed every third of it. */
  ttlMs: number;
  /** Aborting it releases the lease. */
  signal?: AbortSignal;
  /** Where failed renewals and releases are reported. */
  logger?: Logger;
}

/** A lease kept alive in the background until it is released or lost. */
export interface HeldLease {
  /**
   * Aborts when the lease ends. The reason is a ConnectError: ABORTED when it was
   * lost (taken over, or not renewed before it expired), CANCELED when released.
   */
  readonly signal: AbortSignal;
  /** Stops renewing and gives the lease up if still held; never throws, idempotent. */
  release(): Promise<void>;
}

/**
 * Tries once to acquire a lease and, if that works, renews it every ttl/3 until
 * released. A renewal that fails for lack of an answer is retried; if none is
 * confirmed before the lease would have expired, it counts as lost, because by
 * then another holder may have it. Undefined when someone else holds the lease.
 */
export async function holdLease(options: HoldLeaseOptions): Promise<HeldLease | undefined> {
  const { leases, name, holder, ttlMs, signal, logger } = options;
  if (signal?.aborted) return undefined;
  const attemptedAt = performance.now();
  if (!(await leases.acquire(name, holder, ttlMs))) return undefined;

  const ended = new AbortController();
  let renewal: NodeJS.Timeout | undefined;
  let expiry: NodeJS.Timeout | undefined;
  const end = (reason: ConnectError): boolean => {
    if (ended.signal.aborted) return false;
    clearTimeout(renewal);
    clearTimeout(expiry);
    signal?.removeEventListener("abort", onAbort);
    ended.abort(reason);
    return true;
  };
  const giveUp = async () => {
    try {
      await leases.release(name, holder);
    } catch (error) {
      logger?.warn("could not release lease; it will expire by itself", { lease: name, error });
    }
  };
  const release = async () => {
    if (end(new ConnectError(`lease "${name}" was released`, Code.Canceled))) await giveUp();
  };
  const onAbort = () => void release();
  // The lease is only known to last ttl from when the last confirmed call was sent.
  const expireFrom = (confirmedAt: number) => {
    clearTimeout(expiry);
    expiry = setTimeout(
      () => {
        // A late renewal may still succeed at the server; giving up frees the lease sooner.
        if (end(new ConnectError(`lease "${name}" was lost: no renewal confirmed within ${ttlMs} ms`, Code.Aborted))) void giveUp();
      },
      confirmedAt + ttlMs - performance.now(),
    );
  };
  const renew = async () => {
    const sentAt = performance.now();
    let renewed: boolean;
    try {
      renewed = await leases.renew(name, holder, ttlMs);
    } catch (error) {
      if (ended.signal.aborted) return;
      logger?.warn("lease renewal failed; retrying", { lease: name, error });
      scheduleRenewal();
      return;
    }
    if (ended.signal.aborted) return;
    if (!renewed) {
      end(new ConnectError(`lease "${name}" was lost: another holder has it or it expired`, Code.Aborted));
      return;
    }
    expireFrom(sentAt);
    scheduleRenewal();
  };
  const scheduleRenewal = () => {
    renewal = setTimeout(() => void renew(), Math.max(1, Math.floor(ttlMs / 3)));
  };

  expireFrom(attemptedAt);
  scheduleRenewal();
  signal?.addEventListener("abort", onAbort, { once: true });
  // Aborted while acquiring: the caller no longer wants it.
  if (signal?.aborted) {
    await release();
    return undefined;
  }
  return { signal: ended.signal, release };
}

/** Options of runWhileLeader. */
export interface RunWhileLeaderOptions extends HoldLeaseOptions {
  /** Ends the campaign, and the leadership if held. */
  signal: AbortSignal;
  /** How long to wait between attempts to become leader; ttl/3 by default. */
  retryMs?: number;
  /** Required: failures to reach the backend are retried, and must be visible. */
  logger: Logger;
}

/**
 * Campaigns for the lease `name` until `signal` aborts. Each time it is won,
 * runs `lead` with a signal that aborts when leadership is lost or `signal`
 * aborts; `lead` should work until then. When `lead` settles the lease is given
 * up; an error from `lead` ends the campaign and is rethrown.
 */
export async function runWhileLeader(options: RunWhileLeaderOptions, lead: (leadership: AbortSignal) => Promise<void>): Promise<void> {
  const { name, holder, ttlMs, signal, retryMs = Math.max(1, Math.floor(ttlMs / 3)), logger } = options;
  checkLeaseArguments(name, holder, ttlMs);
  requirePositiveInteger("retryMs", retryMs);
  while (!signal.aborted) {
    let held: HeldLease | undefined;
    try {
      held = await holdLease(options);
    } catch (error) {
      logger.warn("could not campaign for leadership; retrying", { lease: name, error });
    }
    if (held) {
      try {
        await lead(held.signal);
      } finally {
        await held.release();
      }
    }
    await delay(retryMs, undefined, { signal }).catch(() => {});
  }
}
