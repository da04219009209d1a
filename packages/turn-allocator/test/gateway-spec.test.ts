import test from "ava";
import { desiredGateways } from "../src/gateway/gateway-spec.js";
import { renderTurnserverConfig } from "../src/gateway/local/turnserver-config.js";
import type { AllocationRow } from "../src/store/allocation-store.js";

const row = (overrides: Partial<AllocationRow>): AllocationRow => ({
  team: "acme",
  app: "shop",
  processType: "sfu-rtc",
  port: 40000,
  relayRange: { first: 50000, last: 50099 },
  routeToken: "abcdefghij",
  replicas: 1,
  secret: "current",
  previousSecret: undefined,
  previousSecretValidUntil: undefined,
  secretRotatedAt: new Date(0),
  allocatedAt: new Date(0),
  tlsReady: false,
  ...overrides,
});

test("a gateway accepts the previous secret only until its grace period ends, and says when that is", (t) => {
  const now = new Date("2026-12-02T12:00:00Z");
  const inGrace = new Date("2026-12-02T12:30:00Z");
  const rows = [
    row({ previousSecret: "old", previousSecretValidUntil: inGrace }),
    row({ app: "blog", previousSecret: "older", previousSecretValidUntil: new Date("2026-12-02T11:00:00Z") }),
  ];
  const { specs, nextExpiry } = desiredGateways(rows, "example.test", now);
  t.deepEqual(
    specs.map((spec) => [spec.name, spec.secrets]),
    [
      ["shop-sfu-rtc", ["current", "old"]],
      ["blog-sfu-rtc", ["current"]],
    ],
  );
  t.deepEqual(nextExpiry, inGrace);
  t.is(desiredGateways(rows, "example.test", inGrace).nextExpiry, undefined);
});

test("turnserver.conf carries no secret and refuses loopback and the platform's addresses unless a peer is allowed", (t) => {
  const [spec] = desiredGateways([row({})], "example.test", new Date()).specs;
  const settings = {
    listenHost: "127.0.0.1",
    userDatabase: "/x/turndb",
    pidFile: "/x/pid",
    logFile: "/x/log",
    platformAddresses: ["10.1.2.3"],
    allowedPeerIps: [],
  };
  const safe = renderTurnserverConfig(spec!, settings);
  t.false(safe.includes("current"));
  for (const line of [
    "listening-port=40000",
    "min-port=50000",
    "max-port=50099",
    "realm=example.test",
    "use-auth-secret",
    "userdb=/x/turndb",
    "denied-peer-ip=10.1.2.3",
    "denied-peer-ip=127.0.0.0-127.255.255.255",
  ]) {
    t.true(safe.split("\n").includes(line), line);
  }
  t.false(safe.includes("allow-loopback-peers"));
  const testing = renderTurnserverConfig(spec!, { ...settings, allowedPeerIps: ["127.0.0.1"] });
  t.true(testing.includes("allow-loopback-peers\nallowed-peer-ip=127.0.0.1\n"));
});

test("with a certificate, turnserver.conf accepts TLS on the gateway's own port from files that a renewal rewrites (the configuration stays)", (t) => {
  const [spec] = desiredGateways([row({})], "example.test", new Date()).specs;
  const settings = { listenHost: "127.0.0.1", userDatabase: "/x/turndb", pidFile: "/x/pid", logFile: "/x/log", platformAddresses: [], allowedPeerIps: [] };
  t.true(renderTurnserverConfig(spec!, settings).split("\n").includes("no-tls"));
  const tls = { certificateFile: "/x/cert.pem", keyFile: "/x/key.pem" };
  const lines = renderTurnserverConfig(spec!, { ...settings, tls }).split("\n");
  for (const line of ["tls-listening-port=40000", "cert=/x/cert.pem", "pkey=/x/key.pem", "no-dtls"]) t.true(lines.includes(line), line);
  t.false(lines.includes("no-tls"));
});
