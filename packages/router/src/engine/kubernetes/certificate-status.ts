import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { watchCollection } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { CertificateRow, RouterStore } from "../../store/router-store.js";

/** The parts of a cert-manager.io/v1 Certificate the router reads. */
interface CertificateObject extends KubernetesObject {
  spec?: { issuerRef?: { name?: string; kind?: string } };
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }[];
    notBefore?: string;
    notAfter?: string;
    lastFailureTime?: string;
    failedIssuanceAttempts?: number;
  };
}

/** What the router shows of one hostname's certificate: the store's columns cert-manager's status maps to. */
export type ObservedCertificate = Pick<CertificateRow, "state" | "issuer" | "notBefore" | "notAfter" | "lastError" | "lastAttemptAt" | "failures">;

const date = (text: string | undefined) => (text ? new Date(text) : null);

/**
 * Maps a Certificate's status (or its absence: ingress-shim has not made it
 * yet) to the router's certificate state: Ready True is issued (renewing
 * while Issuing is True again); Issuing False with reason Failed is failed,
 * with cert-manager's message as the error; Issuing True is issuing.
 */
export function observedCertificate(certificate: CertificateObject | undefined): ObservedCertificate {
  const conditions = certificate?.status?.conditions ?? [];
  const ready = conditions.find((condition) => condition.type === "Ready");
  const issuing = conditions.find((condition) => condition.type === "Issuing");
  const issuerRef = certificate?.spec?.issuerRef;
  const status = certificate?.status ?? {};
  const valid = ready?.status === "True";
  const failed = issuing?.status === "False" && issuing.reason === "Failed";
  return {
    state: failed ? "failed" : issuing?.status === "True" ? (valid ? "renewing" : "issuing") : valid ? "issued" : "pending",
    issuer: issuerRef?.name ? `cert-manager ${issuerRef.kind ?? "Issuer"}/${issuerRef.name}` : "cert-manager",
    notBefore: valid ? date(status.notBefore) : null,
    notAfter: valid ? date(status.notAfter) : null,
    lastError: failed ? (issuing.message ?? "issuance failed") : "",
    lastAttemptAt: failed ? date(status.lastFailureTime ?? issuing.lastTransitionTime) : null,
    failures: failed ? (status.failedIssuanceAttempts ?? 1) : 0,
  };
}

function sameAs(row: CertificateRow | undefined, observed: ObservedCertificate): boolean {
  if (row === undefined) return false;
  const time = (value: Date | null) => value?.getTime() ?? null;
  return (
    row.state === observed.state &&
    row.issuer === observed.issuer &&
    time(row.notBefore) === time(observed.notBefore) &&
    time(row.notAfter) === time(observed.notAfter) &&
    row.lastError === observed.lastError &&
    time(row.lastAttemptAt) === time(observed.lastAttemptAt) &&
    row.failures === observed.failures
  );
}

/** Options of followCertificateStatus. */
export interface CertificateStatusOptions {
  kubeConfig: KubeConfig;
  store: Pick<RouterStore, "listCertificates" | "ensureCertificates" | "updateCertificate" | "deleteCertificates">;
  logger: Logger;
}

/** Follows cert-manager's Certificates into the router's certificate rows. */
export interface CertificateStatusFollower {
  /**
   * The hostnames routed now, each with the `namespace/name` of the
   * Certificate ingress-shim makes for it (named after its TLS secret).
   * Rows of other hostnames are dropped; resolves once the rows match.
   */
  expect(certificates: ReadonlyMap<string, string>): Promise<void>;
  close(): void;
}

/**
 * Watches Certificates in every namespace (a team's Ingresses live in the
 * team's namespace) and writes each routed hostname's state into the store,
 * where `berth domains` and ListRoutes read it as they do on the local
 * engine. Every router replica writes the same values: idempotent, and a
 * row is only written when it changed.
 */
export function followCertificateStatus(options: CertificateStatusOptions): CertificateStatusFollower {
  let seen: ReadonlyMap<string, KubernetesObject> = new Map();
  /** Hostname to the `namespace/name` of its Certificate. */
  let expected: ReadonlyMap<string, string> | undefined;
  let queue: Promise<void> = Promise.resolve();

  async function write(): Promise<void> {
    // Until the first expect(), every row would look stale.
    if (expected === undefined) return;
    const rows = new Map((await options.store.listCertificates()).map((row) => [row.hostname, row]));
    const stale = [...rows.keys()].filter((hostname) => !expected!.has(hostname));
    if (stale.length > 0) await options.store.deleteCertificates(stale);
    await options.store.ensureCertificates([...expected.keys()].filter((hostname) => !rows.has(hostname)));
    for (const [hostname, key] of expected) {
      const observed = observedCertificate(seen.get(key) as CertificateObject | undefined);
      if (!sameAs(rows.get(hostname), observed)) await options.store.updateCertificate(hostname, observed);
    }
  }

  /** One write at a time, in order; a failed one is logged and the next change writes everything again. */
  function sync(): Promise<void> {
    queue = queue.then(write).catch((error: unknown) => options.logger.warn("could not record certificate status", { error }));
    return queue;
  }

  const watch = watchCollection({
    kubeConfig: options.kubeConfig,
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    plural: "certificates",
    logger: options.logger,
    onChange(objects) {
      seen = new Map(objects);
      void sync();
    },
  });

  return {
    expect(certificates) {
      expected = new Map(certificates);
      return sync();
    },
    close: () => watch.stop(),
  };
}
