import type { GatewaySpec } from "../gateway-spec.js";

/** Where a local gateway listens and what it may relay to, beyond its spec. */
export interface TurnserverSettings {
  listenHost: string;
  /** The SQLite user database holding the gateway's secrets. */
  userDatabase: string;
  pidFile: string;
  logFile: string;
  /** The platform's own addresses: never a relay peer. */
  platformAddresses: readonly string[];
  /** Peers allowed despite the rules above (tests relay on loopback). */
  allowedPeerIps: readonly string[];
  /** The gateway's certificate and key files, when it serves TLS. */
  tls?: { certificateFile: string; keyFile: string };
}

/**
 * A turnserver.conf for one gateway. Secrets are not in it: with
 * `use-auth-secret` and a `userdb`, coturn reads the `turn_secret` table on
 * each authentication, so rotation rewrites the table and never restarts
 * the gateway. Relaying to loopback, multicast, 0.0.0.0/8 and the platform's
 * own addresses is refused unless a peer is explicitly allowed. With a
 * certificate, the gateway accepts TLS on its port; a renewed certificate
 * leaves the configuration as it is: coturn re-reads the files on SIGUSR2.
 */
export function renderTurnserverConfig(spec: GatewaySpec, settings: TurnserverSettings): string {
  const lines = [
    `listening-ip=${settings.listenHost}`,
    `listening-port=${spec.port}`,
    `relay-ip=${settings.listenHost}`,
    `min-port=${spec.relayRange.first}`,
    `max-port=${spec.relayRange.last}`,
    `realm=${spec.realm}`,
    "use-auth-secret",
    `userdb=${settings.userDatabase}`,
    "fingerprint",
    "no-cli",
    // TLS on the listening port itself (coturn tells TLS from plain TCP on one port), so turns: needs no port of its own.
    ...(settings.tls ? [`tls-listening-port=${spec.port}`, `cert=${settings.tls.certificateFile}`, `pkey=${settings.tls.keyFile}`] : ["no-tls"]),
    "no-dtls",
    "no-multicast-peers",
    "denied-peer-ip=0.0.0.0-0.255.255.255",
    "denied-peer-ip=127.0.0.0-127.255.255.255",
    ...settings.platformAddresses.map((address) => `denied-peer-ip=${address}`),
    // coturn refuses loopback peers before it looks at allowed-peer-ip; the
    // explicit deny above keeps every loopback address but the allowed ones closed.
    ...(settings.allowedPeerIps.length > 0 ? ["allow-loopback-peers"] : []),
    ...settings.allowedPeerIps.map((address) => `allowed-peer-ip=${address}`),
    `pidfile=${settings.pidFile}`,
    `log-file=${settings.logFile}`,
    "simple-log",
  ];
  return `${lines.join("\n")}\n`;
}
