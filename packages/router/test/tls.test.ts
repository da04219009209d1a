import { randomBytes } from "node:crypto";
import test from "ava";
import { createCoordination, silentLogger } from "@berth/kit";
import type { Coordination } from "@berth/kit";
import { eventually } from "@berth/kit/testing";
import { createAcmeAccountKey, createAcmeIssuer } from "../src/tls/acme-issuer.js";
import { createCertificateManager } from "../src/tls/certificate-manager.js";
import type { CertificateManagerOptions } from "../src/tls/certificate-manager.js";
import { X509Certificate } from "@peculiar/x509";
import { createCertificateAuthority, createPlatformCaIssuer, permittedDomainsOf, platformCaDomains } from "../src/tls/platform-ca.js";
import type { CertificateIssuer } from "../src/tls/issued-certificate.js";
import { startTestDataPlane, webProcess } from "./support/data-plane.js";
import { http2Exchange, http2Get, httpsGet } from "./support/https-client.js";
import { pebbleInstalled, startPebble } from "./support/pebble.js";
import { openTestStore } from "./support/store.js";
import type { TestStore } from "./support/store.js";
import { startUpstream } from "./support/upstream.js";

const HOUR = 60 * 60 * 1000;
const REDIS_URL = "redis://127.0.0.1:6379";

function manager(store: TestStore, issuer: CertificateIssuer, overrides: Partial<CertificateManagerOptions> = {}) {
  return createCertificateManager({
    store: store.store,
    issuer,
    leases: createCoordination().leases,
    renewBeforeMs: 30 * 24 * HOUR,
    checkIntervalMs: HOUR,
    retryBaseMs: HOUR,
    retryMaxMs: 24 * HOUR,
    logger: silentLogger,
    ...overrides,
  });
}

test("over HTTP/2 a canary's split tells a client its release by a cookie and keeps a client with the cookie on its release", async (t) => {
  const store = await openTestStore();
  const authority = await createCertificateAuthority("berth test platform CA", platformCaDomains("berth.localhost"));
  const certificates = manager(store, await createPlatformCaIssuer(authority));
  const serving = await startUpstream("v1");
  const canary = await startUpstream("v2");
  const plane = await startTestDataPlane({ httpsPort: 0, certificates });
  t.teardown(async () => {
    certificates.close();
    await plane.close();
    await serving.close();
    await canary.close();
  });
  const endpoints = [
    { ...serving.endpoint(), releaseVersion: 1 },
    { ...canary.endpoint(), releaseVersion: 2 },
  ];
  plane.applyEndpoints([{ ...webProcess("shop", "web", []), endpoints, canary: { releaseVersion: 2, percent: 50 } }], false);
  await certificates.sync(["shop.berth.localhost"]);
  await certificates.settled();
  const get = (headers = {}) => http2Exchange(plane.httpsPort, "shop.berth.localhost", authority.certificatePem, "/", headers);

  const fresh = await Promise.all(Array.from({ length: 20 }, () => get()));
  for (const answer of fresh) t.deepEqual(answer.headers["set-cookie"], [`berth-release=${answer.body.slice(1, 2)}; Path=/; HttpOnly; SameSite=Lax`]);
  for (const release of [1, 2]) {
    const kept = await Promise.all(Array.from({ length: 10 }, () => get({ cookie: `berth-release=${release}` })));
    t.deepEqual([...new Set(kept.map((answer) => answer.body))], [`v${release} GET /`]);
    t.true(kept.every((answer) => answer.headers["set-cookie"] === undefined));
  }
});

test("the platform CA issues a certificate per platform route, served by SNI over HTTP/1.1 and HTTP/2; a custom domain is outside its name constraints", async (t) => {
  const store = await openTestStore();
  const authority = await createCertificateAuthority("berth test platform CA", platformCaDomains("berth.localhost"));
  const certificates = manager(store, await createPlatformCaIssuer(authority));
  const web = await startUpstream("web-1");
  const plane = await startTestDataPlane({ httpsPort: 0, certificates });
  t.teardown(async () => {
    certificates.close();
    await plane.close();
    await web.close();
    await store.close();
  });
  plane.setEndpoints("web", [web.endpoint()]);
  plane.routes.setDomains([{ hostname: "www.example.com", app: "shop", processType: "web" }]);
  await certificates.sync(["shop.berth.localhost", "www.example.com"]);
  await certificates.settled();

  const rows = await store.store.listCertificates();
  t.deepEqual(
    rows.map((row) => [row.hostname, row.state]),
    [
      ["shop.berth.localhost", "issued"],
      ["www.example.com", "failed"],
    ],
  );
  t.is(rows[0]!.issuer, "platform-ca");
  t.true(rows[0]!.notAfter!.getTime() > Date.now() + 80 * 24 * HOUR);
  t.regex(
    rows[1]!.lastError ?? "",
    /only certifies its own domains \(www\.example\.com is outside berth\.localhost and localhost\); a custom domain needs BERTH_ROUTER_TLS=acme/,
  );

  t.deepEqual(await httpsGet(plane.httpsPort, "shop.berth.localhost", authority.certificatePem, "/tls"), {
    status: 200,
    body: "web-1 GET /tls",
    alpn: "http/1.1",
  });
  await t.throwsAsync(httpsGet(plane.httpsPort, "www.example.com", authority.certificatePem), undefined, "no certificate for a custom domain");
  t.deepEqual(await http2Get(plane.httpsPort, "shop.berth.localhost", authority.certificatePem, "/h2"), { status: 200, body: "web-1 GET /h2", alpn: "h2" });
  const forwarded = JSON.parse((await http2Get(plane.httpsPort, "shop.berth.localhost", authority.certificatePem, "/headers")).body) as Record<string, string>;
  t.is(forwarded["x-forwarded-proto"], "https");
  t.is(forwarded.host, `shop.berth.localhost:${plane.httpsPort}`);

  await t.throwsAsync(httpsGet(plane.httpsPort, "unknown.example.org", authority.certificatePem), undefined, "no certificate, no handshake");

  // Forgetting a hostname drops its certificate from the store and from SNI.
  await certificates.sync([]);
  await certificates.settled();
  t.deepEqual(await store.store.listCertificates(), []);
  await t.throwsAsync(httpsGet(plane.httpsPort, "shop.berth.localhost", authority.certificatePem));
});

test("the platform CA lives a year and its critical name constraints permit only the platform domain, localhost and loopback addresses", async (t) => {
  const authority = await createCertificateAuthority("berth test platform CA", platformCaDomains("berth.localhost"));
  const certificate = new X509Certificate(authority.certificatePem);
  const lifeDays = (certificate.notAfter.getTime() - certificate.notBefore.getTime()) / (24 * HOUR);
  t.true(lifeDays > 364 && lifeDays < 366, `${lifeDays} days`);
  t.true(certificate.getExtension("2.5.29.30")?.critical);
  t.deepEqual(permittedDomainsOf(authority.certificatePem), ["berth.localhost", "localhost"]);
  const issuer = await createPlatformCaIssuer(authority);
  await t.notThrowsAsync(issuer.issueFor(["shop.berth.localhost", "localhost", "127.0.0.1", "::1"]));
  for (const outside of ["accounts.google.com", "berth.localhost.evil.com", "localhost.example", "10.0.0.1"]) {
    await t.throwsAsync(issuer.issueFor([outside]), { message: /only certifies its own domains/ }, outside);
  }
});

test("certificates due for renewal are renewed, and a failing issuer records the error and keeps the old certificate", async (t) => {
  const store = await openTestStore();
  const authority = await createCertificateAuthority("berth test platform CA", platformCaDomains("berth.localhost"));
  const platformCa = await createPlatformCaIssuer(authority, { validityDays: 10 });
  let failing = false;
  const issuer: CertificateIssuer = {
    name: "platform-ca",
    issue: (hostname) => (failing ? Promise.reject(new Error("the CA is unreachable")) : platformCa.issue(hostname)),
  };
  // Certificates valid 10 days are always inside a 30-day renewal window.
  const certificates = manager(store, issuer, { retryBaseMs: 0 });
  t.teardown(async () => {
    certificates.close();
    await store.close();
  });
  await certificates.sync(["shop.berth.localhost"]);
  await certificates.settled();
  const first = await store.store.getCertificate("shop.berth.localhost");
  t.is(first?.state, "issued");

  await certificates.sync(["shop.berth.localhost"]);
  await certificates.settled();
  const renewed = await store.store.getCertificate("shop.berth.localhost");
  t.is(renewed?.state, "issued");
  t.not(renewed?.certificatePem, first?.certificatePem, "renewed: a new certificate");

  failing = true;
  await certificates.sync(["shop.berth.localhost"]);
  await certificates.settled();
  const failed = await store.store.getCertificate("shop.berth.localhost");
  t.is(failed?.state, "failed");
  t.is(failed?.lastError, "the CA is unreachable");
  t.is(failed?.failures, 1);
  t.truthy(failed?.lastAttemptAt);
  t.is(failed?.certificatePem, renewed?.certificatePem, "the valid certificate is still served");
  t.truthy(certificates.contextFor("shop.berth.localhost"));
});

// Serial: two of these at once (two pebble servers) made issuance fail and the file time out; the cause is not found yet.
const pebbleTest = pebbleInstalled ? test.serial : test.skip;

pebbleTest("a certificate from a real ACME server (pebble, http-01 through the proxy) for a route and a custom domain", async (t) => {
  const store = await openTestStore();
  const web = await startUpstream("web-1");
  let certificates: ReturnType<typeof manager> | undefined;
  const plane = await startTestDataPlane({
    httpsPort: 0,
    certificates: { contextFor: (hostname) => certificates?.contextFor(hostname) },
    answerChallenge: (token) => store.store.getChallenge(token),
  });
  const pebble = await startPebble(plane.httpPort);
  t.teardown(async () => {
    certificates?.close();
    await plane.close();
    await pebble.close();
    await web.close();
    await store.close();
  });
  const accountKeyPem = await store.store.saveAcmeAccountKey(pebble.directoryUrl, await createAcmeAccountKey());
  const issuer = createAcmeIssuer({
    directoryUrl: pebble.directoryUrl,
    accountKeyPem,
    email: "ops@example.com",
    directoryCaPem: pebble.listenerCaPem,
    challenges: { put: (token, keyAuthorization) => store.store.putChallenge(token, keyAuthorization), remove: (token) => store.store.removeChallenge(token) },
  });
  certificates = manager(store, issuer);
  plane.setEndpoints("web", [web.endpoint()]);
  plane.routes.setDomains([{ hostname: "www.example.com", app: "shop", processType: "web" }]);
  await certificates.sync(["shop.berth.localhost", "www.example.com"]);
  await certificates.settled();

  const rows = await store.store.listCertificates();
  t.deepEqual(
    rows.map((row) => [row.hostname, row.state, row.issuer, row.lastError]),
    [
      ["shop.berth.localhost", "issued", "acme", ""],
      ["www.example.com", "issued", "acme", ""],
    ],
  );
  const root = await pebble.issuingRoot();
  t.is((await httpsGet(plane.httpsPort, "shop.berth.localhost", root, "/acme")).body, "web-1 GET /acme");
  t.is((await httpsGet(plane.httpsPort, "www.example.com", root)).body, "web-1 GET /");
  t.deepEqual((await store.db.query("SELECT count(*)::int AS n FROM acme_challenges")).rows, [{ n: 0 }], "challenges are cleaned up");

  // A challenge the proxy cannot answer fails validation: the state and error are recorded.
  const unanswered = manager(
    store,
    createAcmeIssuer({
      directoryUrl: pebble.directoryUrl,
      accountKeyPem,
      directoryCaPem: pebble.listenerCaPem,
      challenges: { put: async () => {}, remove: async () => {} },
    }),
  );
  t.teardown(() => unanswered.close());
  await unanswered.sync(["shop.berth.localhost", "www.example.com", "broken.example.com"]);
  await unanswered.settled();
  const broken = await store.store.getCertificate("broken.example.com");
  t.is(broken?.state, "failed");
  t.truthy(broken?.lastError);
  t.is(broken?.certificatePem, null);
});

pebbleTest("two router replicas sharing one Redis order each certificate from the ACME server once, and both serve it", async (t) => {
  const store = await openTestStore();
  const web = await startUpstream("web-1");
  const replicas: ReturnType<typeof manager>[] = [];
  const servedBy = (hostname: string) => replicas.find((replica) => replica.contextFor(hostname));
  const plane = await startTestDataPlane({
    httpsPort: 0,
    certificates: { contextFor: (hostname) => servedBy(hostname)?.contextFor(hostname) },
    answerChallenge: (token) => store.store.getChallenge(token),
  });
  const pebble = await startPebble(plane.httpPort);
  // Each replica has its own Redis connection, as two router processes would; the prefix keeps this test's leases apart.
  const keyPrefix = `berth-test-${randomBytes(4).toString("hex")}:`;
  const coordinations: Coordination[] = [createCoordination({ redisUrl: REDIS_URL, keyPrefix }), createCoordination({ redisUrl: REDIS_URL, keyPrefix })];
  t.teardown(async () => {
    for (const replica of replicas) replica.close();
    for (const coordination of coordinations) await coordination.close();
    await plane.close();
    await pebble.close();
    await web.close();
    await store.close();
  });
  const accountKeyPem = await store.store.saveAcmeAccountKey(pebble.directoryUrl, await createAcmeAccountKey());
  const acme = createAcmeIssuer({
    directoryUrl: pebble.directoryUrl,
    accountKeyPem,
    directoryCaPem: pebble.listenerCaPem,
    challenges: { put: (token, keyAuthorization) => store.store.putChallenge(token, keyAuthorization), remove: (token) => store.store.removeChallenge(token) },
  });
  const orders = new Map<string, number>();
  const counting: CertificateIssuer = {
    name: acme.name,
    issue: (hostname) => {
      orders.set(hostname, (orders.get(hostname) ?? 0) + 1);
      return acme.issue(hostname);
    },
  };
  for (const coordination of coordinations) replicas.push(manager(store, counting, { leases: coordination.leases, leaseTtlMs: 2_000 }));
  plane.setEndpoints("web", [web.endpoint()]);
  plane.routes.setDomains([{ hostname: "www.example.com", app: "shop", processType: "web" }]);
  const hostnames = ["shop.berth.localhost", "www.example.com"];
  await Promise.all(replicas.map((replica) => replica.sync(hostnames)));
  await Promise.all(replicas.map((replica) => replica.settled()));

  t.deepEqual(Object.fromEntries(orders), { "shop.berth.localhost": 1, "www.example.com": 1 }, "one ACME order per hostname across both replicas");
  const rows = await store.store.listCertificates();
  t.deepEqual(
    rows.map((row) => [row.hostname, row.state, row.issuer, row.lastError]),
    [
      ["shop.berth.localhost", "issued", "acme", ""],
      ["www.example.com", "issued", "acme", ""],
    ],
    "both issued; a failure shows its ACME error here",
  );
  // The replica that did not issue loads what the other stored, and serves it.
  for (const replica of replicas) {
    for (const hostname of hostnames) await eventually(async () => replica.contextFor(hostname), `${hostname} served by every replica`, 30_000);
  }
  const root = await pebble.issuingRoot();
  t.is((await httpsGet(plane.httpsPort, "www.example.com", root)).body, "web-1 GET /");
});
