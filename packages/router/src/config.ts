import {
  ConfigError,
  envBool,
  envChoice,
  envInt,
  envOptional,
  envString,
  envUrl,
  peerUrl,
  readCommonConfig,
  readEngine,
  readKubernetesTarget,
} from "@berth/kit";
import type { CommonConfig, Environment, KubernetesTarget } from "@berth/kit";

/** How HTTPS certificates are obtained on the local engine. */
export type TlsMode = "platform-ca" | "acme" | "off";

/** Everything the router needs to start. */
export interface RouterConfig extends CommonConfig {
  schedulerUrl: string;
  /** The name this router acknowledges endpoint generations under (one per router replica). */
  consumer: string;
  /** local: the router is the reverse proxy; kubernetes: it applies Ingress objects. */
  engine: "local" | "kubernetes";
  proxy: {
    host: string;
    httpPort: number;
    httpsPort: number;
    /** The ports clients use (behind a port forward they differ), for URLs and redirects. */
    publicHttpPort: number;
    publicHttpsPort: number;
    redirectHttps: boolean;
    /** How long a request waits for a healthy replica before a 503. */
    replicaWaitMs: number;
    /** How long a removed replica's open WebSockets may stay, until the scheduler sends its own drain timeout. */
    drainTimeoutMs: number;
    /** How often the requests counted per app, process type and release are reported to the scheduler. */
    trafficReportMs: number;
  };
  tls: {
    mode: TlsMode;
    /** ACME directory (required with mode acme). */
    acmeDirectoryUrl: string | undefined;
    acmeEmail: string | undefined;
    /** A PEM file of CAs to trust for the ACME directory's HTTPS (a private or test CA). */
    acmeDirectoryCaFile: string | undefined;
    /** Certificates are renewed this long before they expire. */
    renewBeforeMs: number;
    /** How often certificates are looked over. */
    checkIntervalMs: number;
    /** First retry after a failed issuance, doubling up to an hour. */
    retryBaseMs: number;
  };
  allowWildcardDomains: boolean;
  kubernetes: KubernetesTarget & {
    ingressClass: string;
    clusterIssuer: string;
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Reads the router's configuration; throws ConfigError naming the variable at fault. */
export function readRouterConfig(env: Environment): RouterConfig {
  const common = readCommonConfig(env, "router");
  const httpPort = envInt(env, "BERTH_ROUTER_HTTP_PORT", 8000, { min: 0, max: 65535 });
  const httpsPort = envInt(env, "BERTH_ROUTER_HTTPS_PORT", 8443, { min: 0, max: 65535 });
  const mode = envChoice(env, "BERTH_ROUTER_TLS", ["platform-ca", "acme", "off"] as const, "platform-ca");
  const acmeDirectoryUrl = envOptional(env, "BERTH_ACME_DIRECTORY_URL") === undefined ? undefined : envUrl(env, "BERTH_ACME_DIRECTORY_URL");
  if (mode === "acme" && acmeDirectoryUrl === undefined) throw new ConfigError("BERTH_ACME_DIRECTORY_URL is required when BERTH_ROUTER_TLS=acme");
  const platformDomain = common.platformDomain.toLowerCase();
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(platformDomain)) {
    throw new ConfigError(`BERTH_PLATFORM_DOMAIN must be a DNS name, got "${common.platformDomain}"`);
  }
  return {
    ...common,
    platformDomain,
    schedulerUrl: peerUrl(env, "scheduler"),
    consumer: envString(env, "BERTH_ROUTER_CONSUMER", "router"),
    engine: readEngine(env),
    proxy: {
      host: envString(env, "BERTH_ROUTER_PROXY_HOST", common.host),
      httpPort,
      httpsPort,
      publicHttpPort: envInt(env, "BERTH_ROUTER_PUBLIC_HTTP_PORT", httpPort, { min: 0, max: 65535 }),
      publicHttpsPort: envInt(env, "BERTH_ROUTER_PUBLIC_HTTPS_PORT", httpsPort, { min: 0, max: 65535 }),
      redirectHttps: envBool(env, "BERTH_ROUTER_REDIRECT_HTTPS", false),
      replicaWaitMs: envInt(env, "BERTH_ROUTER_REPLICA_WAIT_MS", 30_000, { min: 0, max: 600_000 }),
      drainTimeoutMs: envInt(env, "BERTH_ROUTER_DRAIN_TIMEOUT_MS", 30_000, { min: 0, max: 3_600_000 }),
      trafficReportMs: envInt(env, "BERTH_ROUTER_TRAFFIC_REPORT_MS", 1000, { min: 50, max: 60_000 }),
    },
    tls: {
      mode,
      acmeDirectoryUrl,
      acmeEmail: envOptional(env, "BERTH_ACME_EMAIL"),
      acmeDirectoryCaFile: envOptional(env, "BERTH_ACME_CA_FILE"),
      renewBeforeMs: envInt(env, "BERTH_CERT_RENEW_BEFORE_DAYS", 30, { min: 1, max: 365 }) * DAY_MS,
      checkIntervalMs: envInt(env, "BERTH_CERT_CHECK_INTERVAL_MS", 3_600_000, { min: 1000 }),
      retryBaseMs: envInt(env, "BERTH_CERT_RETRY_BASE_MS", 60_000, { min: 100 }),
    },
    allowWildcardDomains: envBool(env, "BERTH_ROUTER_ALLOW_WILDCARD_DOMAINS", false),
    kubernetes: {
      ...readKubernetesTarget(env),
      ingressClass: envString(env, "BERTH_INGRESS_CLASS", "nginx"),
      clusterIssuer: envString(env, "BERTH_CLUSTER_ISSUER", "letsencrypt"),
    },
  };
}
