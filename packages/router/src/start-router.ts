import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import type { Client } from "@connectrpc/connect";
import {
  createCoordination,
  createInternalClient,
  createLogger,
  loadKubeConfig,
  maskedConfig,
  openDatabase,
  routeHostname,
  serve,
  startServer,
} from "@berth/kit";
import type { Coordination, Database, Logger } from "@berth/kit";
import { RouterService } from "@berth/proto/router/v1/router";
import { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { KubeConfig } from "@kubernetes/client-node";
import type { RouterConfig } from "./config.js";
import { startEndpointFeed } from "./endpoint-feed.js";
import type { EndpointGeneration } from "./endpoint-feed.js";
import { createLocalRoutingEngine } from "./engine/local-engine.js";
import type { RoutingEngine } from "./engine/routing-engine.js";
import { startDataPlane } from "./proxy/data-plane.js";
import type { DataPlane } from "./proxy/data-plane.js";
import { createRouteReconciler } from "./reconcile/route-reconciler.js";
import { createRouteTable, processTargets, targetKey } from "./route-table.js";
import type { ProcessEndpointsUpdate } from "./route-table.js";
import { createRouterService } from "./service.js";
import { routerMigrations } from "./store/migrations.js";
import { createRouterStore } from "./store/router-store.js";
import type { RouterStore, StoredKeyPair } from "./store/router-store.js";
import { X509Certificate } from "@peculiar/x509";
import { startTrafficReporter } from "./traffic-reporter.js";
import { publicUrlFor } from "./public-urls.js";
import { createCertificateManager } from "./tls/certificate-manager.js";
import type { CertificateManager } from "./tls/certificate-manager.js";
import type { CertificateIssuer } from "./tls/issued-certificate.js";
import { PLATFORM_CA_VALIDITY_DAYS, createCertificateAuthority, createPlatformCaIssuer, permittedDomainsOf, platformCaDomains } from "./tls/platform-ca.js";

/** Collaborators a caller may provide instead of the ones built from the configuration. */
export interface RouterDeps {
  logger?: Logger;
  /** An open, migrated database; otherwise one is opened from the configuration. */
  database?: Database;
  /** The scheduler's endpoint stream; otherwise an internal client to `schedulerUrl`. */
  scheduler?: Pick<Client<typeof SchedulerService>, "watchEndpoints" | "ackEndpoints" | "reportDrained" | "reportTraffic">;
  /** The cluster, for the kubernetes engine. */
  kubeConfig?: KubeConfig;
  /** Shared with other services of the process; built from REDIS_URL otherwise, and then closed with the router. */
  coordination?: Coordination;
}

/** A running router: the RouterService and, on the local engine, the reverse proxy. */
export interface RunningRouter {
  /** The RouterService (gRPC, Connect). */
  readonly url: string;
  readonly port: number;
  /** 0 on the kubernetes engine. */
  readonly proxyHttpPort: number;
  /** 0 on the kubernetes engine or with TLS off. */
  readonly proxyHttpsPort: number;
  /** The platform CA to trust for local HTTPS (BERTH_ROUTER_TLS=platform-ca), also written to the data directory. */
  readonly platformCaPem: string | undefined;
  /** Resolves once the first endpoint snapshot is applied. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const HOUR_MS = 60 * 60 * 1000;

/** A platform CA is replaced when it expires within this long. */
const PLATFORM_CA_RENEW_BEFORE_MS = 30 * 24 * HOUR_MS;

/**
 * The platform CA in force: the stored one, or a new one when there is none
 * or the stored one does not fit (no name constraints, or others than the
 * platform domain's, as made by earlier versions; expiring within 30 days;
 * or made to live longer than a new one would). Certificates the old CA
 * issued are dropped, to be issued again by the new one.
 */
async function currentPlatformCa(store: RouterStore, platformDomain: string, logger: Logger): Promise<StoredKeyPair> {
  const domains = platformCaDomains(platformDomain);
  const stored = await store.getPlatformCa();
  if (stored !== undefined) {
    const certificate = new X509Certificate(stored.certificatePem);
    const lifeMs = certificate.notAfter.getTime() - certificate.notBefore.getTime();
    const why =
      permittedDomainsOf(stored.certificatePem)?.join(",") !== domains.join(",")
        ? `it is not limited to ${domains.join(" and ")}`
        : certificate.notAfter.getTime() - Date.now() < PLATFORM_CA_RENEW_BEFORE_MS
          ? `it expires on ${certificate.notAfter.toISOString()}`
          : lifeMs > (PLATFORM_CA_VALIDITY_DAYS + 1) * 24 * HOUR_MS
            ? `it lives until ${certificate.notAfter.toISOString()}`
            : undefined;
    if (why === undefined) return stored;
    const replaced = await store.replacePlatformCa(stored, await createCertificateAuthority("berth platform CA", domains));
    await store.deleteCertificates((await store.listCertificates()).map((row) => row.hostname));
    logger.warn(`the platform CA was replaced because ${why}: trust the new platform-ca.pem instead of the old one`);
    return replaced;
  }
  return store.savePlatformCa(await createCertificateAuthority("berth platform CA", domains));
}

async function platformCaIssuer(
  store: RouterStore,
  dataDir: string,
  platformDomain: string,
  logger: Logger,
): Promise<{ issuer: CertificateIssuer; pem: string; fallback: tls.SecureContext }> {
  const authority = await currentPlatformCa(store, platformDomain, logger);
  const file = path.join(dataDir, "router", "platform-ca.pem");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, authority.certificatePem);
  logger.info("platform CA ready: trust it for local HTTPS", { file });
  const issuer = await createPlatformCaIssuer(authority);
  // Clients that send no SNI (a bare IP) still complete a handshake and get the 404 page.
  const fallbackCertificate = await issuer.issueFor(["localhost", "127.0.0.1"]);
  return {
    issuer,
    pem: authority.certificatePem,
    fallback: tls.createSecureContext({ cert: fallbackCertificate.certificatePem, key: fallbackCertificate.privateKeyPem }),
  };
}

async function acmeIssuer(store: RouterStore, config: RouterConfig): Promise<CertificateIssuer> {
  // acme-client and the axios it brings load only where ACME is configured: they were
  // a tenth of the module loading on every `npm start`, which issues from the platform CA.
  const { createAcmeAccountKey, createAcmeIssuer } = await import("./tls/acme-issuer.js");
  const directoryUrl = config.tls.acmeDirectoryUrl!;
  const accountKeyPem = (await store.getAcmeAccountKey(directoryUrl)) ?? (await store.saveAcmeAccountKey(directoryUrl, await createAcmeAccountKey()));
  return createAcmeIssuer({
    directoryUrl,
    email: config.tls.acmeEmail,
    accountKeyPem,
    directoryCaPem: config.tls.acmeDirectoryCaFile ? fs.readFileSync(config.tls.acmeDirectoryCaFile, "utf8") : undefined,
    challenges: { put: (token, keyAuthorization) => store.putChallenge(token, keyAuthorization), remove: (token) => store.removeChallenge(token) },
  });
}

/** Starts the router: store, route table, certificates, proxy or Ingress engine, RouterService, endpoint feed. */
export async function startRouter(config: RouterConfig, deps: RouterDeps = {}): Promise<RunningRouter> {
  const logger = deps.logger ?? createLogger("router");
  logger.info(
    "starting router",
    maskedConfig({ ...config, proxy: JSON.stringify(config.proxy), tls: JSON.stringify(config.tls), kubernetes: JSON.stringify(config.kubernetes) }),
  );
  const database =
    deps.database ??
    (await openDatabase({
      service: "router",
      schema: "router",
      migrations: routerMigrations,
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      logger,
    }));
  const closers: (() => Promise<void> | void)[] = [];
  if (!deps.database) closers.push(() => database.close());
  try {
    const store = createRouterStore(database);
    const routes = createRouteTable(config.platformDomain);
    // Until the first snapshot, known routes of web processes wait for replicas instead of answering 404.
    routes.applyEndpoints(
      (await store.listRoutes())
        .filter((route) => route.replica === 0)
        .map((route) => ({
          team: route.team,
          app: route.app,
          processType: route.processType,
          routingClass: RoutingClass.WEB,
          endpoints: [],
          removed: false,
        })),
      true,
    );

    let engine: RoutingEngine;
    let certificates: CertificateManager | undefined;
    let platformCaPem: string | undefined;
    let dataPlane: DataPlane | undefined;
    const local = config.engine === "local";
    if (local) {
      if (config.tls.mode !== "off") {
        let issuer: CertificateIssuer;
        let fallback: tls.SecureContext | undefined;
        if (config.tls.mode === "platform-ca") {
          const platformCa = await platformCaIssuer(store, config.dataDir, config.platformDomain, logger);
          issuer = platformCa.issuer;
          fallback = platformCa.fallback;
          platformCaPem = platformCa.pem;
        } else {
          issuer = await acmeIssuer(store, config);
        }
        let leases = deps.coordination?.leases;
        if (leases === undefined) {
          const own = createCoordination({ redisUrl: config.redisUrl, logger });
          closers.push(() => own.close());
          leases = own.leases;
        }
        certificates = createCertificateManager({
          store,
          issuer,
          leases,
          renewBeforeMs: config.tls.renewBeforeMs,
          checkIntervalMs: config.tls.checkIntervalMs,
          retryBaseMs: config.tls.retryBaseMs,
          retryMaxMs: HOUR_MS,
          logger: logger.child({ component: "certificates" }),
          fallback,
        });
        closers.push(() => certificates?.close());
      }
      engine = createLocalRoutingEngine(certificates);
    } else {
      // Like the scheduler's: the given KubeConfig, else KUBECONFIG, else in-cluster credentials or ~/.kube/config.
      const kubeConfig = deps.kubeConfig ?? (await loadKubeConfig(config.kubernetes.kubeconfigPath));
      // Loaded only here: the Kubernetes client costs a process about 80 MB.
      const { createIngressEngine } = await import("./engine/kubernetes/ingress-engine.js");
      const ingresses = createIngressEngine({ kubeConfig, ...config.kubernetes, store, logger: logger.child({ component: "ingress" }) });
      closers.push(() => ingresses.close?.());
      engine = ingresses;
    }

    const reconciler = createRouteReconciler({ store, routes, engine, logger: logger.child({ component: "reconciler" }) });
    closers.push(() => reconciler.close());
    await reconciler.kick();

    const scheduler = deps.scheduler ?? createInternalClient(SchedulerService, { baseUrl: config.schedulerUrl, token: config.internalToken });
    let reportDrained: (replicas: string[]) => void = () => {};
    if (local) {
      dataPlane = await startDataPlane({
        routes,
        host: config.proxy.host,
        httpPort: config.proxy.httpPort,
        httpsPort: certificates ? config.proxy.httpsPort : undefined,
        publicHttpsPort: config.proxy.publicHttpsPort || undefined,
        certificates,
        redirectHttps: config.proxy.redirectHttps && certificates !== undefined,
        replicaWaitMs: config.proxy.replicaWaitMs,
        drainTimeoutMs: config.proxy.drainTimeoutMs,
        answerChallenge: (token) => store.getChallenge(token),
        onDrained: (replicas) => reportDrained(replicas),
        logger: logger.child({ component: "proxy" }),
      });
      const plane = dataPlane;
      closers.push(() => plane.close());
    }

    const tlsServer = certificates;
    const urlFor = publicUrlFor({
      local,
      httpPort: dataPlane && config.proxy.publicHttpPort === 0 ? dataPlane.httpPort : config.proxy.publicHttpPort,
      httpsPort: dataPlane && config.proxy.publicHttpsPort === 0 ? dataPlane.httpsPort : config.proxy.publicHttpsPort,
      servesTls: tlsServer && ((hostname) => tlsServer.serves(hostname)),
    });

    const server = await startServer({
      name: "router",
      host: config.host,
      port: config.port,
      services: [
        serve(
          RouterService,
          createRouterService({
            store,
            routes,
            reconciler,
            domainPolicy: { platformDomain: config.platformDomain, allowWildcards: config.allowWildcardDomains },
            urlFor,
            onUrlChange: certificates && ((listener) => tlsServer!.onServedChange(listener)),
          }),
        ),
      ],
      internalToken: config.internalToken,
      maxMessageBytes: config.maxMessageBytes,
      logger,
    });
    closers.push(() => server.close());
    if (dataPlane) {
      const reporter = startTrafficReporter({
        scheduler,
        consumer: config.consumer,
        counter: dataPlane.traffic,
        intervalMs: config.proxy.trafficReportMs,
        registry: server.metrics.registry,
        logger: logger.child({ component: "traffic" }),
      });
      closers.push(() => reporter.close());
    }

    const feed = startEndpointFeed({
      scheduler,
      consumer: config.consumer,
      logger: logger.child({ component: "endpoint-feed" }),
      apply: (generation) => applyGeneration(generation, { store, routes, dataPlane, reconciler, platformDomain: config.platformDomain }),
    });
    reportDrained = (replicas) => feed.reportDrained(replicas);
    closers.push(() => feed.close());

    logger.info("router ready", { url: server.url, proxyHttpPort: dataPlane?.httpPort ?? 0, proxyHttpsPort: dataPlane?.httpsPort ?? 0 });
    return {
      url: server.url,
      port: server.port,
      proxyHttpPort: dataPlane?.httpPort ?? 0,
      proxyHttpsPort: dataPlane?.httpsPort ?? 0,
      platformCaPem,
      ready: feed.ready,
      async close() {
        for (const close of closers.reverse()) await close();
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close();
    throw error;
  }
}

/**
 * Applies one endpoint generation: the proxy's table first (that is what the
 * acknowledgement promises), then the stored routes of web processes that
 * gained healthy replicas or went away, and the per-replica routes of rtc
 * processes, which follow their replica count.
 */
async function applyGeneration(
  generation: EndpointGeneration,
  parts: {
    store: RouterStore;
    routes: ReturnType<typeof createRouteTable>;
    dataPlane: DataPlane | undefined;
    reconciler: { kick(): Promise<void> };
    platformDomain: string;
  },
): Promise<void> {
  const { store, routes, dataPlane } = parts;
  if (dataPlane && generation.drainTimeoutMs > 0) dataPlane.setDrainTimeout(generation.drainTimeoutMs);
  if (dataPlane) dataPlane.applyEndpoints(generation.processes, generation.snapshot);
  else routes.applyEndpoints(generation.processes, generation.snapshot);
  let changed = false;
  const live = new Set<string>();
  for (const process of generation.processes) {
    if (process.routingClass === RoutingClass.RTC) {
      if (await syncRtcRoutes(store, process, parts.platformDomain)) changed = true;
      if (!process.removed) live.add(targetKey(process.app, process.processType));
      continue;
    }
    const hostname = routeHostname(process.app, process.processType, parts.platformDomain);
    if (process.routingClass !== RoutingClass.WEB || !hostname) continue;
    if (process.removed) {
      if ((await store.deleteRoute(process.app, process.processType)).length > 0) changed = true;
      continue;
    }
    live.add(targetKey(process.app, process.processType));
    if (process.endpoints.length > 0 && (await store.upsertRoute({ hostname, team: process.team, app: process.app, processType: process.processType })))
      changed = true;
  }
  if (generation.snapshot) {
    for (const route of await store.listRoutes()) {
      if (live.has(targetKey(route.app, route.processType))) continue;
      await store.deleteRoute(route.app, route.processType);
      changed = true;
    }
  }
  // Certificates and Ingress objects follow in the background: the acknowledgement does not wait for ACME.
  if (changed) void parts.reconciler.kick();
}

/**
 * Stores the per-replica routes of an rtc process (so that their certificates
 * are issued like every route's): one per replica the process is scaled to,
 * none once it is removed. A process whose route token is not known yet keeps
 * the routes it has. Returns whether they changed.
 */
async function syncRtcRoutes(store: RouterStore, process: ProcessEndpointsUpdate, platformDomain: string): Promise<boolean> {
  if (process.removed) return (await store.deleteRoute(process.app, process.processType)).length > 0;
  if (!process.rtcRouteToken) return false;
  const hostnames = processTargets(process, platformDomain).flatMap(({ hostname }) => (hostname === undefined ? [] : [hostname]));
  return store.syncReplicaRoutes(process, hostnames);
}
