import { field, isJsonObject, numberOr, type JsonObject } from "../patch.js";
import { type Cluster, type Controller, controllerOf, metaOf, now, ownerKeys, ownerReferenceTo, ownKey, splitKey } from "./runtime.js";

/**
 * Decides how issuance for a Certificate's DNS names ends: undefined issues
 * it, a string fails it with that reason (as an ACME order fails for a
 * domain whose DNS does not point at the cluster).
 */
export type CertificateIssuanceHook = (dnsNames: readonly string[]) => string | undefined;

/** The simulated issuer's clock. */
export interface CertificateTimings {
  /** From a Certificate's (re)creation to the end of issuance, like an ACME order's round trips. */
  issueDelayMs: number;
  /** Validity of an issued certificate (Let's Encrypt: 90 days). */
  validityMs: number;
}

export const defaultCertificateTimings: CertificateTimings = { issueDelayMs: 50, validityMs: 90 * 24 * 3600 * 1000 };

const ISSUER_ANNOTATIONS = { "cert-manager.io/cluster-issuer": "ClusterIssuer", "cert-manager.io/issuer": "Issuer" } as const;

/** The issuer an Ingress's annotations name, as ingress-shim reads them. */
function issuerRefOf(ingress: JsonObject): JsonObject | undefined {
  const annotations = metaOf(ingress).annotations;
  if (!isJsonObject(annotations)) return undefined;
  for (const [annotation, kind] of Object.entries(ISSUER_ANNOTATIONS)) {
    const name = annotations[annotation];
    if (typeof name === "string" && name !== "") return { name, kind, group: "cert-manager.io" };
  }
  return undefined;
}

/** Certificate name (its secretName) to DNS names, merged over TLS entries sharing a secret as ingress-shim does. */
function wantedCertificates(ingress: JsonObject): Map<string, string[]> {
  const wanted = new Map<string, string[]>();
  const tls = field(ingress, "spec", "tls");
  for (const entry of Array.isArray(tls) ? (tls as JsonObject[]) : []) {
    const secretName = entry.secretName;
    if (typeof secretName !== "string" || secretName === "") continue;
    const hosts = Array.isArray(entry.hosts) ? (entry.hosts as string[]) : [];
    wanted.set(secretName, [...new Set([...(wanted.get(secretName) ?? []), ...hosts])]);
  }
  return wanted;
}

/**
 * cert-manager's ingress-shim: for an Ingress annotated with
 * `cert-manager.io/cluster-issuer` (or `issuer`), one Certificate per TLS
 * secretName, named after it, for that entry's hosts, owned by the Ingress;
 * Certificates it owns that the Ingress no longer asks for are deleted.
 */
export function ingressShimController(cluster: Cluster): Controller {
  const { kinds } = cluster;
  const manager = "cert-manager-ingress-shim";
  return {
    name: "ingress-shim",
    triggers: [
      { kind: kinds.ingress, keys: ownKey },
      { kind: kinds.certificate, keys: ownerKeys("Ingress") },
    ],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const ingress = cluster.get(kinds.ingress, namespace, name);
      if (ingress === undefined || metaOf(ingress).deletionTimestamp !== undefined) return undefined;
      const issuerRef = issuerRefOf(ingress);
      const wanted = issuerRef === undefined ? new Map<string, string[]>() : wantedCertificates(ingress);
      const owned = cluster.list(kinds.certificate, namespace).filter((certificate) => controllerOf(certificate)?.uid === metaOf(ingress).uid);
      for (const [secretName, dnsNames] of wanted) {
        const spec = { dnsNames, secretName, issuerRef, usages: ["digital signature", "key encipherment"] };
        const existing = cluster.get(kinds.certificate, namespace, secretName);
        if (existing === undefined) {
          cluster.create(
            kinds.certificate,
            {
              apiVersion: "cert-manager.io/v1",
              kind: "Certificate",
              metadata: { name: secretName, namespace, ownerReferences: [ownerReferenceTo(kinds.ingress, ingress)] },
              spec,
            },
            manager,
          );
        } else if (controllerOf(existing)?.uid === metaOf(ingress).uid && JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
          cluster.update(kinds.certificate, { ...existing, spec }, manager);
        }
      }
      for (const certificate of owned) {
        const certificateName = String(metaOf(certificate).name);
        if (!wanted.has(certificateName)) cluster.remove(kinds.certificate, namespace, certificateName);
      }
      return undefined;
    },
  };
}

function condition(type: string, status: "True" | "False", reason: string, message: string, generation: number): JsonObject {
  return { type, status, reason, message, lastTransitionTime: now(), observedGeneration: generation };
}

/**
 * cert-manager's certificates controllers, collapsed into one: a
 * Certificate whose spec changed (its generation is newer than its Ready
 * condition's) is issued after `issueDelayMs` — Ready True with notBefore,
 * notAfter, renewalTime (two thirds through) and the revision — or, when the
 * hook names a reason, fails: Issuing False/Failed with lastFailureTime and
 * failedIssuanceAttempts, Ready False. A failed Certificate is not retried
 * (cert-manager backs off for an hour) until its spec changes. No TLS
 * Secret is written: berth reads issuance state, never the key pair.
 */
export function certificateController(cluster: Cluster, issuance: () => CertificateIssuanceHook | undefined, timings: CertificateTimings): Controller {
  const { kinds } = cluster;
  const manager = "cert-manager-certificates";
  /** By uid and generation: when issuance started. */
  const started = new Map<string, number>();
  return {
    name: "certificates",
    triggers: [{ kind: kinds.certificate, keys: ownKey }],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const certificate = cluster.get(kinds.certificate, namespace, name);
      if (certificate === undefined) return undefined;
      const generation = numberOr(metaOf(certificate).generation, 1);
      const status = isJsonObject(certificate.status) ? certificate.status : {};
      const conditions = Array.isArray(status.conditions) ? (status.conditions as JsonObject[]) : [];
      const ready = conditions.find((entry) => entry.type === "Ready");
      const issuing = conditions.find((entry) => entry.type === "Issuing");
      // Done with this generation: issued, or failed, and not issuing again.
      const settled = ready?.observedGeneration === generation && issuing?.status !== "True" && (ready.status === "True" || issuing?.reason === "Failed");
      if (settled) return undefined;
      const attempt = `${String(metaOf(certificate).uid)}/${generation}`;
      const since = started.get(attempt);
      if (since === undefined) {
        started.set(attempt, Date.now());
        const reissue = ready?.status === "True";
        cluster.updateStatus(
          kinds.certificate,
          {
            ...certificate,
            status: {
              ...status,
              conditions: [
                reissue
                  ? { ...ready, observedGeneration: generation }
                  : condition("Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist", generation),
                reissue
                  ? condition("Issuing", "True", "Reissuing", "Fields on existing CertificateRequest resource not up to date", generation)
                  : condition("Issuing", "True", "DoesNotExist", "Issuing certificate as Secret does not exist", generation),
              ],
            },
          },
          manager,
        );
        return timings.issueDelayMs;
      }
      const remaining = since + timings.issueDelayMs - Date.now();
      if (remaining > 0) return remaining;
      started.delete(attempt);
      const dnsNames = Array.isArray(field(certificate, "spec", "dnsNames")) ? (field(certificate, "spec", "dnsNames") as string[]) : [];
      const failure = issuance()?.(dnsNames);
      if (failure !== undefined) {
        cluster.updateStatus(
          kinds.certificate,
          {
            ...certificate,
            status: {
              ...status,
              lastFailureTime: now(),
              failedIssuanceAttempts: numberOr(status.failedIssuanceAttempts) + 1,
              conditions: [
                ready?.status === "True"
                  ? { ...ready, observedGeneration: generation }
                  : condition("Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist", generation),
                condition("Issuing", "False", "Failed", `The certificate request has failed to complete and will be retried: ${failure}`, generation),
              ],
            },
          },
          manager,
        );
        return undefined;
      }
      const issuedAt = Date.now();
      const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
      const { lastFailureTime: _failure, failedIssuanceAttempts: _attempts, ...rest } = status;
      cluster.updateStatus(
        kinds.certificate,
        {
          ...certificate,
          status: {
            ...rest,
            notBefore: at(issuedAt),
            notAfter: at(issuedAt + timings.validityMs),
            renewalTime: at(issuedAt + (timings.validityMs * 2) / 3),
            revision: numberOr(status.revision) + 1,
            conditions: [condition("Ready", "True", "Ready", "Certificate is up to date and has not expired", generation)],
          },
        },
        manager,
      );
      return undefined;
    },
  };
}
