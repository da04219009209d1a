import type { Logger } from "@berth/kit";
import type { ProcessEndpointsUpdate, RouteTable } from "../route-table.js";
import type { ProxyCore } from "./http1-connection.js";
import { startProxyServer } from "./proxy-server.js";
import { createTrafficCounter } from "./traffic-counter.js";
import type { TrafficCounter } from "./traffic-counter.js";
import type { CertificateSource } from "./proxy-server.js";
import { createUpstreamPools } from "./upstream-pools.js";

/** Options of startDataPlane. */
export interface DataPlaneOptions {
  routes: RouteTable;
  host: string;
  httpPort: number;
  /** Undefined serves no HTTPS. */
  httpsPort?: number;
  /** The HTTPS port clients see, for redirects (defaults to the listening one). */
  publicHttpsPort?: number;
  certificates?: CertificateSource;
  redirectHttps: boolean;
  replicaWaitMs: number;
  drainTimeoutMs: number;
  /** Below the replicas' own keep-alive timeout (Node's default is 5 s). */
  upstreamIdleTimeoutMs?: number;
  clientIdleTimeoutMs?: number;
  maxHeaderBytes?: number;
  answerChallenge(token: string): Promise<string | undefined>;
  /** Replicas removed from the table that have no connection left. */
  onDrained(replicas: string[]): void;
  logger: Logger;
}

/** The running reverse proxy. */
export interface DataPlane {
  readonly httpPort: number;
  readonly httpsPort: number;
  /** Applies endpoint updates to the route table and starts draining replicas that left it. */
  applyEndpoints(updates: readonly ProcessEndpointsUpdate[], snapshot: boolean): void;
  /** Replicas removed from the table that still have connections. */
  draining(): string[];
  /** How long removed replicas keep their WebSockets from now on. */
  setDrainTimeout(ms: number): void;
  /** The requests answered per app, process type and release. */
  readonly traffic: TrafficCounter;
  close(): Promise<void>;
}

/** Starts the reverse proxy over a route table. */
export async function startDataPlane(options: DataPlaneOptions): Promise<DataPlane> {
  const pools = createUpstreamPools({
    idleTimeoutMs: options.upstreamIdleTimeoutMs ?? 4000,
    drainTimeoutMs: options.drainTimeoutMs,
    onDrained: options.onDrained,
  });
  let httpsPort = options.publicHttpsPort ?? 0;
  const traffic = createTrafficCounter();
  const core: ProxyCore = {
    routes: options.routes,
    pools,
    replicaWaitMs: options.replicaWaitMs,
    redirectHttps: options.redirectHttps,
    get httpsPort() {
      return httpsPort;
    },
    maxHeaderBytes: options.maxHeaderBytes ?? 64 * 1024,
    clientIdleTimeoutMs: options.clientIdleTimeoutMs ?? 60_000,
    answerChallenge: options.answerChallenge,
    traffic,
    logger: options.logger,
  };
  const server = await startProxyServer(core, {
    host: options.host,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort,
    certificates: options.certificates,
  });
  if (options.publicHttpsPort === undefined) httpsPort = server.httpsPort;
  return {
    httpPort: server.httpPort,
    httpsPort: server.httpsPort,
    applyEndpoints(updates, snapshot) {
      pools.apply(options.routes.applyEndpoints(updates, snapshot));
    },
    draining: () => pools.draining(),
    setDrainTimeout: (ms) => pools.setDrainTimeout(ms),
    traffic,
    async close() {
      await server.close();
      pools.close();
    },
  };
}
