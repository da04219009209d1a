import * as https from "node:https";
import acme from "acme-client";
import type { CertificateIssuer, IssuedCertificate } from "./issued-certificate.js";
import { validityOf } from "./issued-certificate.js";

/** Where http-01 key authorizations are kept until the ACME server has fetched them. */
export interface ChallengeResponses {
  put(token: string, keyAuthorization: string): Promise<void>;
  remove(token: string): Promise<void>;
}

/** Options of createAcmeIssuer. */
export interface AcmeIssuerOptions {
  directoryUrl: string;
  /** Contact address for the ACME account; optional. */
  email?: string;
  /** The account key (PEM), kept in the store so the account survives restarts. */
  accountKeyPem: string;
  challenges: ChallengeResponses;
  /** Extra CA certificates (PEM) to trust for the directory's own HTTPS (a test CA such as pebble's). */
  directoryCaPem?: string;
}

/** A new ACME account key (ECDSA P-256, PEM). */
export async function createAcmeAccountKey(): Promise<string> {
  return (await acme.crypto.createPrivateEcdsaKey()).toString();
}

/**
 * An issuer that obtains certificates over ACME with the http-01 challenge:
 * the key authorization is published through `challenges` and served by the
 * proxy on plain HTTP, where the ACME server fetches it.
 */
export function createAcmeIssuer(options: AcmeIssuerOptions): CertificateIssuer {
  if (options.directoryCaPem) {
    // acme-client talks through its own axios instance; this is the one way to make it trust a private CA.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: options.directoryCaPem, keepAlive: true });
  }
  const client = new acme.Client({ directoryUrl: options.directoryUrl, accountKey: options.accountKeyPem });
  // One registration for every order: client.auto() registers when it knows no
  // account URL yet, and two orders started together would both register, the
  // second as an empty account update that ACME servers refuse.
  let account: Promise<unknown> | undefined;
  const ensureAccount = () =>
    (account ??= client
      .createAccount({ termsOfServiceAgreed: true, ...(options.email ? { contact: [`mailto:${options.email}`] } : {}) })
      .catch((error: unknown) => {
        account = undefined;
        throw error;
      }));

  return {
    name: "acme",
    async issue(hostname: string): Promise<IssuedCertificate> {
      await ensureAccount();
      const [privateKey, csr] = await acme.crypto.createCsr({ commonName: hostname, altNames: [hostname] }, await acme.crypto.createPrivateEcdsaKey());
      const certificatePem = await client.auto({
        csr,
        email: options.email,
        termsOfServiceAgreed: true,
        challengePriority: ["http-01"],
        // acme-client would fetch the challenge itself on port 80 first; the ACME server's own check is the one that counts.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authorization, challenge, keyAuthorization) => {
          if (challenge.type === "http-01") await options.challenges.put(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (_authorization, challenge) => {
          if (challenge.type === "http-01") await options.challenges.remove(challenge.token);
        },
      });
      return { certificatePem, privateKeyPem: privateKey.toString(), ...validityOf(certificatePem) };
    },
  };
}
