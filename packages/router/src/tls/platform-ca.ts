import { webcrypto } from "node:crypto";
import * as net from "node:net";
import { AsnConvert } from "@peculiar/asn1-schema";
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints, id_ce_nameConstraints } from "@peculiar/asn1-x509";
import * as x509 from "@peculiar/x509";
import type { CertificateIssuer, IssuedCertificate } from "./issued-certificate.js";

const crypto = webcrypto;
x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The certificate and key of a certificate authority, as PEM. */
export interface CertificateAuthorityPem {
  certificatePem: string;
  privateKeyPem: string;
}

function privateKeyPem(der: ArrayBuffer): string {
  const base64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`;
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function randomSerial(): string {
  // Positive and 16 bytes long, as CA/B Forum rules ask of serial numbers.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
}

/** How long a new platform CA lives: a year, so that a leaked key stops mattering. */
export const PLATFORM_CA_VALIDITY_DAYS = 365;
// Loopback addresses, for clients that connect by IP without SNI.
const LOOPBACK_SUBTREES = ["127.0.0.0/8", "::1/128"];

/** The DNS names a platform CA may certify: its domains, their subdomains and loopback. */
export function platformCaDomains(platformDomain: string): string[] {
  return [platformDomain, "localhost"];
}

/**
 * Why a certificate authority constrained to `domains` cannot certify
 * `hostname`, or undefined when it can (the domain, a subdomain, or a loopback address).
 */
export function outsideNameConstraints(hostname: string, domains: readonly string[]): string | undefined {
  if (net.isIP(hostname)) return hostname === "::1" || hostname.startsWith("127.") ? undefined : `${hostname} is not a loopback address`;
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (domains.some((domain) => name === domain || name.endsWith(`.${domain}`))) return undefined;
  return `${hostname} is outside ${domains.join(" and ")}`;
}

/** The domains a CA certificate's name constraints permit, or undefined when it has none. */
export function permittedDomainsOf(certificatePem: string): string[] | undefined {
  const extension = new x509.X509Certificate(certificatePem).getExtension(id_ce_nameConstraints);
  if (extension === null) return undefined;
  const constraints = AsnConvert.parse(extension.value, NameConstraints);
  return [...(constraints.permittedSubtrees ?? [])].flatMap((subtree) => (subtree.base.dNSName === undefined ? [] : [subtree.base.dNSName]));
}

/**
 * Creates a new self-signed certificate authority (ECDSA P-256) whose name
 * constraints (critical) limit it to `domains` and their subdomains plus
 * loopback addresses: trusting it trusts nothing else.
 */
export async function createCertificateAuthority(
  commonName: string,
  domains: readonly string[],
  validityDays = PLATFORM_CA_VALIDITY_DAYS,
): Promise<CertificateAuthorityPem> {
  const keys = await generateKeys();
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}, O=berth`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validityDays * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.Extension(id_ce_nameConstraints, true, AsnConvert.serialize(nameConstraints(domains))),
    ],
  });
  return {
    certificatePem: `${certificate.toString("pem")}\n`,
    privateKeyPem: privateKeyPem(await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
  };
}

function nameConstraints(domains: readonly string[]): NameConstraints {
  const subtrees = [
    ...domains.map((domain) => new GeneralName({ dNSName: domain })),
    ...LOOPBACK_SUBTREES.map((range) => new GeneralName({ iPAddress: range })),
  ].map((base) => new GeneralSubtree({ base }));
  return new NameConstraints({ permittedSubtrees: new GeneralSubtrees(subtrees) });
}

/** Options of createPlatformCaIssuer. */
export interface PlatformCaOptions {
  /** How long issued certificates are valid (short, like ACME's, so renewal is exercised). */
  validityDays?: number;
}

/**
 * An issuer backed by the platform's own CA, so HTTPS works on the local
 * engine without ACME: trust the CA certificate once and every route is valid.
 */
export async function createPlatformCaIssuer(
  authority: CertificateAuthorityPem,
  options: PlatformCaOptions = {},
): Promise<CertificateIssuer & { issueFor(hostnames: string[]): Promise<IssuedCertificate> }> {
  const caCertificate = new x509.X509Certificate(authority.certificatePem);
  const caKey = await crypto.subtle.importKey("pkcs8", derOf(authority.privateKeyPem), KEY_ALGORITHM, false, ["sign"]);
  const authorityKeyIdentifier = await x509.AuthorityKeyIdentifierExtension.create(caCertificate);
  const validityDays = options.validityDays ?? 90;

  const domains = permittedDomainsOf(authority.certificatePem);

  async function issueFor(hostnames: string[]): Promise<IssuedCertificate> {
    // A certificate outside the CA's name constraints would be refused by every client anyway.
    for (const hostname of hostnames) {
      const problem = domains && outsideNameConstraints(hostname, domains);
      if (problem !== undefined) {
        throw new Error(
          `the platform CA only certifies its own domains (${problem}); a custom domain needs BERTH_ROUTER_TLS=acme, whose HTTP challenge proves that the domain points at this router`,
        );
      }
    }
    const keys = await generateKeys();
    const now = Date.now();
    const notBefore = new Date(Math.floor((now - 60_000) / 1000) * 1000);
    const notAfter = new Date(Math.min(Math.floor((now + validityDays * DAY_MS) / 1000) * 1000, caCertificate.notAfter.getTime()));
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${hostnames[0]}`,
      issuer: caCertificate.subject,
      notBefore,
      notAfter,
      signingAlgorithm: SIGNING_ALGORITHM,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(hostnames.map((value) => ({ type: net.isIP(value) ? ("ip" as const) : ("dns" as const), value }))),
        authorityKeyIdentifier,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return {
      certificatePem: `${certificate.toString("pem")}\n${authority.certificatePem}`,
      privateKeyPem: privateKeyPem(await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
      notBefore,
      notAfter,
    };
  }

  return { name: "platform-ca", issue: (hostname) => issueFor([hostname]), issueFor };
}
