import { ConfigError, envInt, envOptional, envString, peerUrl, readCommonConfig, readEngine, readKubernetesTarget } from "@berth/kit";
import type { CommonConfig, EngineKind, Environment, KubernetesTarget } from "@berth/kit";
import { formatPortRange, parsePortRange, rangeSize, rangesOverlap } from "./port-range.js";
import type { PortRange } from "./port-range.js";

/** Everything the turn-allocator needs to start. */
export interface TurnAllocatorConfig extends CommonConfig {
  schema: string;
  /** The scheduler, whose apps' rtc processes the allocations follow. */
  schedulerUrl: string;
  /** The router, which issues the local gateways' certificates (BERTH_ROUTER_URL). */
  routerUrl: string;
  engine: EngineKind;
  /** The public UDP ports, one per rtc process (BERTH_TURN_PORT_RANGE). */
  portRange: PortRange;
  /** The pool relay ranges are carved from (BERTH_TURN_RELAY_PORT_RANGE), never overlapping portRange. */
  relayRange: PortRange;
  /** The size of each gateway's relay range. */
  relayPortsPerGateway: number;
  /** The TURN realm of every gateway. */
  realm: string;
  /** Credential lifetimes: the default when a request names none, and the bounds a request must keep to. */
  credentialTtl: { defaultSeconds: number; minSeconds: number; maxSeconds: number };
  /** How long the previous secret stays valid after a rotation. */
  rotationGraceSeconds: number;
  /** Credentials an app may mint per minute. */
  mintsPerMinute: number;
  /** Local engine: the address gateways listen and relay on, and the turnserver binary. */
  gateway: {
    listenHost: string;
    turnserverPath: string;
    /** The sqlite3 shell that writes secrets into each gateway's user database. */
    sqlite3Path: string;
    /**
     * Peers a gateway may relay to despite being loopback or the platform's own
     * addresses. Empty in production; tests relay between allocations on 127.0.0.1.
     */
    allowedPeerIps: string[];
    restartBackoffMs: number;
    maxRestartBackoffMs: number;
  };
  kubernetes: KubernetesTarget & { coturnImage: string };
}

function envPortRange(env: Environment, name: string, fallback: string): PortRange {
  const raw = envString(env, name, fallback);
  const parsed = parsePortRange(raw);
  if (typeof parsed === "string") throw new ConfigError(`${name} ${parsed}`);
  return parsed;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Reads the turn-allocator's configuration; throws ConfigError naming the variable at fault. */
export function readTurnAllocatorConfig(env: Environment): TurnAllocatorConfig {
  const common = readCommonConfig(env, "turn-allocator");
  const portRange = envPortRange(env, "BERTH_TURN_PORT_RANGE", "40000-40999");
  const relayRange = envPortRange(env, "BERTH_TURN_RELAY_PORT_RANGE", "49152-65535");
  if (rangesOverlap(portRange, relayRange)) {
    throw new ConfigError(`BERTH_TURN_RELAY_PORT_RANGE ${formatPortRange(relayRange)} overlaps BERTH_TURN_PORT_RANGE ${formatPortRange(portRange)}`);
  }
  const relayPortsPerGateway = envInt(env, "BERTH_TURN_RELAY_PORTS_PER_GATEWAY", 256, { min: 2, max: rangeSize(relayRange) });
  const maxSeconds = envInt(env, "BERTH_TURN_CREDENTIAL_MAX_TTL_SECONDS", 86_400, { min: 60, max: 7 * 86_400 });
  const defaultSeconds = envInt(env, "BERTH_TURN_CREDENTIAL_TTL_SECONDS", Math.min(3_600, maxSeconds), { min: 60, max: maxSeconds });
  const allowedPeerIps = (envOptional(env, "BERTH_TURN_ALLOWED_PEER_IPS") ?? "")
    .split(",")
    .map((ip) => ip.trim())
    .filter((ip) => ip !== "");
  for (const ip of allowedPeerIps) {
    if (!IPV4.test(ip)) throw new ConfigError(`BERTH_TURN_ALLOWED_PEER_IPS must be IPv4 addresses separated by commas, got "${ip}"`);
  }
  return {
    ...common,
    schema: envString(env, "BERTH_TURN_ALLOCATOR_SCHEMA", "turn_allocator"),
    schedulerUrl: peerUrl(env, "scheduler"),
    routerUrl: peerUrl(env, "router"),
    engine: readEngine(env),
    portRange,
    relayRange,
    relayPortsPerGateway,
    realm: envString(env, "BERTH_TURN_REALM", common.platformDomain),
    credentialTtl: { defaultSeconds, minSeconds: 60, maxSeconds },
    rotationGraceSeconds: envInt(env, "BERTH_TURN_ROTATION_GRACE_SECONDS", 3_600, { min: 0, max: 7 * 86_400 }),
    mintsPerMinute: envInt(env, "BERTH_TURN_MINTS_PER_MINUTE", 600, { min: 1 }),
    gateway: {
      listenHost: envString(env, "BERTH_TURN_LISTEN_HOST", common.host),
      turnserverPath: envString(env, "BERTH_TURNSERVER_PATH", "turnserver"),
      sqlite3Path: envString(env, "BERTH_SQLITE3_PATH", "sqlite3"),
      allowedPeerIps,
      restartBackoffMs: envInt(env, "BERTH_TURN_RESTART_BACKOFF_MS", 1_000, { min: 10 }),
      maxRestartBackoffMs: envInt(env, "BERTH_TURN_MAX_RESTART_BACKOFF_MS", 30_000, { min: 10 }),
    },
    kubernetes: { ...readKubernetesTarget(env), coturnImage: envString(env, "BERTH_TURN_COTURN_IMAGE", "coturn/coturn:4.6.3") },
  };
}
