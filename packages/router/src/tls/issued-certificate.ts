import { X509Certificate } from "node:crypto";

/** A certificate ready to serve: the leaf first, then its chain, and the private key. */
export interface IssuedCertificate {
  certificatePem: string;
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** Something that obtains certificates: ACME, or the platform's own CA. */
export interface CertificateIssuer {
  /** "acme" or "platform-ca", as shown in a route's certificate status. */
  readonly name: string;
  issue(hostname: string): Promise<IssuedCertificate>;
}

/** The validity window of the first (leaf) certificate of a PEM chain. */
export function validityOf(certificatePem: string): { notBefore: Date; notAfter: Date } {
  const leaf = new X509Certificate(certificatePem);
  return { notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
}
