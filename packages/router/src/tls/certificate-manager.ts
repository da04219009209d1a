import { randomBytes } from "node:crypto";
import { hostname as machineName } from "node:os";
import * as tls from "node:tls";
import { createReconcileLoop, holdLease } from "@berth/kit";
import type { Leases, Logger } from "@berth/kit";
import type { CertificateSource } from "../proxy/proxy-server.js";
import type { CertificateRow, RouterStore } from "../store/router-store.js";
import type { CertificateIssuer } from "./issued-certificate.js";

/** Options of createCertificateManager. */
export interface CertificateManagerOptions {
  store: Pick<RouterStore, "listCertificates" | "getCertificate" | "ensureCertificates" | "updateCertificate" | "deleteCertificates">;
  issuer: CertificateIssuer;
  /**
   * Shared by the router replicas (Redis): a replica issues a hostname's
   * certificate only while it holds that hostname's lease, so an ACME CA sees
   * one order per name, not one per replica. The others load the result.
   */
  leases: Leases;
  /** How long a hostname's lease outlives a replica that died while issuing; renewed meanwhile. */
  leaseTtlMs?: number;
  /** A certificate is renewed when it expires within this long. */
  renewBeforeMs: number;
  /** How often certificates are looked over for renewal, and ones issued by another replica loaded. */
  checkIntervalMs: number;
  /** The first retry after a failure; doubles with each failure up to `retryMaxMs`. */
  retryBaseMs: number;
  retryMaxMs: number;
  logger: Logger;
  /** Served when a client sends no SNI or a name without a certificate. */
  fallback?: tls.SecureContext;
}

/** Issues, renews and serves (by SNI) the certificate of every routed hostname. */
export interface CertificateManager extends CertificateSource {
  /** Makes sure every hostname has or gets a certificate; forgets the others. */
  sync(hostnames: readonly string[]): Promise<void>;
  /** Whether a handshake for `hostname` gets its own certificate (not the fallback). */
  serves(hostname: string): boolean;
  /** Calls `listener` whenever a hostname starts or stops getting its own certificate; returns the unsubscribe. */
  onServedChange(listener: () => void): () => void;
  /** Resolves once no certificate is due for issuance right now. */
  settled(): Promise<void>;
  close(): void;
}

interface Served {
  context: tls.SecureContext;
  notAfter: number;
}

/** Creates the certificate manager; call `sync` with the routed hostnames to start it. */
export function createCertificateManager(options: CertificateManagerOptions): CertificateManager {
  const leaseTtlMs = options.leaseTtlMs ?? 60_000;
  const holder = `${machineName()}:${process.pid}:${randomBytes(6).toString("hex")}`;
  const served = new Map<string, Served>();
  const servedListeners = new Set<() => void>();
  const servedChanged = () => {
    for (const listener of servedListeners) listener();
  };
  let wanted = new Set<string>();
  // Read by a pass between issuances: one under way when the manager closes issues no more.
  let closed = false;

  function serve(row: CertificateRow): void {
    if (!row.certificatePem || !row.privateKeyPem || !row.notAfter) return;
    const current = served.get(row.hostname);
    if (current && current.notAfter === row.notAfter.getTime()) return;
    try {
      served.set(row.hostname, {
        context: tls.createSecureContext({ cert: row.certificatePem, key: row.privateKeyPem }),
        notAfter: row.notAfter.getTime(),
      });
      // A renewal changes nothing a client sees of the hostname.
      if (!current) servedChanged();
    } catch (error) {
      options.logger.error("stored certificate is unusable", { hostname: row.hostname, error });
    }
  }

  function retryAt(row: CertificateRow): number {
    const delay = Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** Math.max(0, row.failures - 1));
    return (row.lastAttemptAt?.getTime() ?? 0) + delay;
  }

  /** When `row` next needs work: now, a later time, or never (Infinity). */
  function dueAt(row: CertificateRow): number {
    if (row.state === "failed") return retryAt(row);
    if (!row.certificatePem || !row.notAfter || row.state === "pending") return 0;
    return row.notAfter.getTime() - options.renewBeforeMs;
  }

  /**
   * Issues `row`'s certificate if no other replica is doing it: under the
   * hostname's lease, and only if the stored row, read again under the lease,
   * is still due (another replica may have just finished). False when another
   * replica holds the lease: its result is loaded by a later pass.
   */
  async function issueUnderLease(row: CertificateRow): Promise<boolean> {
    const lease = await holdLease({ leases: options.leases, name: `router:certificate:${row.hostname}`, holder, ttlMs: leaseTtlMs, logger: options.logger });
    if (lease === undefined) return false;
    try {
      const current = await options.store.getCertificate(row.hostname);
      if (current === undefined || !wanted.has(row.hostname)) return true;
      if (dueAt(current) > Date.now()) serve(current);
      else await issue(current);
      return true;
    } finally {
      await lease.release();
    }
  }

  async function issue(row: CertificateRow): Promise<void> {
    const renewing = row.certificatePem !== null;
    await options.store.updateCertificate(row.hostname, { state: renewing ? "renewing" : "issuing", lastAttemptAt: new Date() });
    try {
      const certificate = await options.issuer.issue(row.hostname);
      if (!wanted.has(row.hostname)) return;
      await options.store.updateCertificate(row.hostname, {
        state: "issued",
        issuer: options.issuer.name,
        certificatePem: certificate.certificatePem,
        privateKeyPem: certificate.privateKeyPem,
        notBefore: certificate.notBefore,
        notAfter: certificate.notAfter,
        lastError: "",
        failures: 0,
      });
      serve({ ...row, certificatePem: certificate.certificatePem, privateKeyPem: certificate.privateKeyPem, notAfter: certificate.notAfter });
      options.logger.info(renewing ? "certificate renewed" : "certificate issued", {
        hostname: row.hostname,
        issuer: options.issuer.name,
        notAfter: certificate.notAfter,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      options.logger.warn("certificate issuance failed", { hostname: row.hostname, issuer: options.issuer.name, error: message });
      await options.store.updateCertificate(row.hostname, { state: "failed", lastError: message, failures: row.failures + 1 });
    }
  }

  async function pass(): Promise<void> {
    const rows = await options.store.listCertificates();
    const stale = rows.filter((row) => !wanted.has(row.hostname)).map((row) => row.hostname);
    if (stale.length > 0) await options.store.deleteCertificates(stale);
    const unwanted = [...served.keys()].filter((hostname) => !wanted.has(hostname));
    for (const hostname of unwanted) served.delete(hostname);
    if (unwanted.length > 0) servedChanged();
    let next = Date.now() + options.checkIntervalMs;
    for (const row of rows) {
      if (closed) return;
      if (!wanted.has(row.hostname)) continue;
      serve(row);
      const due = dueAt(row);
      if (due > Date.now()) next = Math.min(next, due);
      // Another replica is issuing it: look again once its lease would have run out.
      else if (!(await issueUnderLease(row))) next = Math.min(next, Date.now() + Math.min(leaseTtlMs, 5_000));
    }
    loop.wakeIn(Math.max(0, next - Date.now()));
  }

  const loop = createReconcileLoop({ name: "certificate", logger: options.logger, pass });

  function lookup(hostname: string): tls.SecureContext | undefined {
    const exact = served.get(hostname);
    if (exact) return exact.context;
    const dot = hostname.indexOf(".");
    return dot > 0 ? served.get(`*${hostname.slice(dot)}`)?.context : undefined;
  }

  return {
    contextFor: (hostname) => lookup(hostname) ?? options.fallback,
    serves: (hostname) => lookup(hostname) !== undefined,
    onServedChange(listener) {
      servedListeners.add(listener);
      return () => servedListeners.delete(listener);
    },

    async sync(hostnames) {
      wanted = new Set(hostnames);
      await options.store.ensureCertificates(hostnames);
      // Issuance may take a while (ACME): callers do not wait for it.
      void loop.kick();
    },

    settled: () => loop.idle(),

    close() {
      closed = true;
      loop.close();
    },
  };
}
