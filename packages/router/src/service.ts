import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { alreadyExists, dnsLabelProblem, invalidArguments, normalizeHostname, notFound, routingClassOf } from "@berth/kit";
import type { FieldViolation } from "@berth/kit";
import { TurnCertificateSchema } from "@berth/proto/router/v1/router";
import type { RouterService } from "@berth/proto/router/v1/router";
import { CertificateState, CertificateStatusSchema, RouteSchema } from "@berth/proto/type/v1/network";
import type { CertificateStatus, Route } from "@berth/proto/type/v1/network";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { customDomainProblem } from "./hostnames.js";
import { createRouteChanges } from "./route-changes.js";
import type { DomainPolicy } from "./hostnames.js";
import type { RouteReconciler } from "./reconcile/route-reconciler.js";
import type { RouteTable } from "./route-table.js";
import type { CertificateRow, CertificateStateName, RouterStore } from "./store/router-store.js";

/** What the router's handlers need. */
export interface RouterServiceDeps {
  store: RouterStore;
  routes: RouteTable;
  reconciler: RouteReconciler;
  domainPolicy: DomainPolicy;
  /** The URL a hostname is reached at (scheme and public port depend on the engine and the hostname's certificate). */
  urlFor(hostname: string): string;
  /** Subscribes to changes of what `urlFor` answers; returns the unsubscribe. */
  onUrlChange?: (listener: () => void) => () => void;
}

const STATES: Record<CertificateStateName, CertificateState> = {
  pending: CertificateState.PENDING,
  issuing: CertificateState.ISSUING,
  issued: CertificateState.ISSUED,
  failed: CertificateState.FAILED,
  renewing: CertificateState.RENEWING,
};

function certificateStatus(row: CertificateRow | undefined): CertificateStatus | undefined {
  if (!row) return undefined;
  return create(CertificateStatusSchema, {
    state: STATES[row.state],
    issuer: row.issuer,
    notBefore: row.notBefore ? timestampFromDate(row.notBefore) : undefined,
    notAfter: row.notAfter ? timestampFromDate(row.notAfter) : undefined,
    lastError: row.lastError,
    lastAttemptAt: row.lastAttemptAt ? timestampFromDate(row.lastAttemptAt) : undefined,
  });
}

function appProblems(app: string, field = "app"): FieldViolation[] {
  const problem = dnsLabelProblem(app);
  return problem ? [{ field, description: problem }] : [];
}

/** The RouterService handlers: routes, custom domains and their certificates, and the stream of route changes. */
export function createRouterService(deps: RouterServiceDeps): ServiceImpl<typeof RouterService> {
  const { store, routes } = deps;
  const changes = createRouteChanges({ store, routes, urlFor: deps.urlFor, onUrlChange: deps.onUrlChange });

  async function certificatesByHostname(): Promise<Map<string, CertificateRow>> {
    return new Map((await store.listCertificates()).map((row) => [row.hostname, row]));
  }

  function route(
    entry: { hostname: string; app: string; processType: string; createdAt: Date },
    customDomain: boolean,
    certificates: Map<string, CertificateRow>,
  ): Route {
    return create(RouteSchema, {
      hostname: entry.hostname,
      app: entry.app,
      processType: entry.processType,
      url: deps.urlFor(entry.hostname),
      customDomain,
      certificate: certificateStatus(certificates.get(entry.hostname)),
      // By hostname: a per-replica hostname of an rtc process counts only its replica.
      healthyEndpoints: routes.current.lookup(entry.hostname)?.upstreams.length ?? 0,
      createdAt: timestampFromDate(entry.createdAt),
    });
  }

  return {
    async listRoutes(request) {
      if (request.app !== "") {
        const problems = appProblems(request.app);
        if (problems.length > 0) throw invalidArguments(problems);
      }
      const app = request.app === "" ? undefined : request.app;
      const [routeRows, domainRows, certificates] = await Promise.all([store.listRoutes(app), store.listDomains(app), certificatesByHostname()]);
      return {
        routes: [...routeRows.map((row) => route(row, false, certificates)), ...domainRows.map((row) => route(row, true, certificates))],
      };
    },

    async addDomain(request) {
      const hostname = normalizeHostname(request.hostname);
      const problems: FieldViolation[] = [...appProblems(request.app)];
      const processProblem = dnsLabelProblem(request.processType);
      if (processProblem) problems.push({ field: "process_type", description: processProblem });
      else if (routingClassOf(request.processType) !== RoutingClass.WEB) {
        problems.push({ field: "process_type", description: `only web processes (web, *-web) are publicly routed; ${request.processType} is not one` });
      }
      const hostnameProblem = customDomainProblem(hostname, deps.domainPolicy);
      if (hostnameProblem) problems.push({ field: "hostname", description: hostnameProblem });
      if (problems.length > 0) throw invalidArguments(problems);

      const added = await store.addDomain({ hostname, app: request.app, processType: request.processType });
      if (!added) {
        const owner = await store.getDomain(hostname);
        const where = owner && owner.app === request.app ? ` by ${owner.processType} of this app` : " by another app";
        throw alreadyExists(`domain ${hostname} is already attached${where}`);
      }
      await store.ensureCertificates([hostname]);
      await deps.reconciler.kick();
      const [certificates, routesVersion] = await Promise.all([certificatesByHostname(), changes.refresh()]);
      return { route: route(added, true, certificates), routesVersion };
    },

    async getDomain(request) {
      const hostname = normalizeHostname(request.hostname);
      const domain = hostname === "" ? undefined : await store.getDomain(hostname);
      if (!domain) throw notFound(`no custom domain ${request.hostname}`);
      return { route: route(domain, true, await certificatesByHostname()) };
    },

    async syncTurnCertificates(request) {
      const suffix = `.turn.${deps.domainPolicy.platformDomain}`;
      const hostnames = request.hostnames.map(normalizeHostname);
      const problems: FieldViolation[] = [];
      hostnames.forEach((hostname, index) => {
        const label = hostname.endsWith(suffix) ? hostname.slice(0, -suffix.length) : undefined;
        const problem = label === undefined ? `must be a TURN hostname, <token>${suffix}` : dnsLabelProblem(label);
        if (problem !== undefined) problems.push({ field: `hostnames[${index}]`, description: problem });
      });
      if (problems.length > 0) throw invalidArguments(problems);
      const wanted = [...new Set(hostnames)];
      // Issuance follows in the background; the caller asks again for what is still pending.
      if (await store.syncTurnHostnames(wanted)) await deps.reconciler.kick();
      const certificates = await certificatesByHostname();
      return {
        certificates: wanted.map((hostname) => {
          const row = certificates.get(hostname);
          return create(TurnCertificateSchema, {
            hostname,
            status: certificateStatus(row),
            certificatePem: row?.certificatePem ?? "",
            privateKeyPem: row?.privateKeyPem ?? "",
          });
        }),
      };
    },

    async listDomains(request) {
      if (request.app !== "") {
        const problems = appProblems(request.app);
        if (problems.length > 0) throw invalidArguments(problems);
      }
      const [domains, certificates] = await Promise.all([store.listDomains(request.app === "" ? undefined : request.app), certificatesByHostname()]);
      return { routes: domains.map((row) => route(row, true, certificates)) };
    },

    async removeDomain(request) {
      const hostname = normalizeHostname(request.hostname);
      const problems = appProblems(request.app);
      if (hostname === "") problems.push({ field: "hostname", description: "must not be empty" });
      if (problems.length > 0) throw invalidArguments(problems);
      if (!(await store.removeDomain(request.app, hostname))) throw notFound(`app ${request.app} has no custom domain ${hostname}`);
      await deps.reconciler.kick();
      return { routesVersion: await changes.refresh() };
    },

    async deleteAppRoutes(request) {
      const problems = appProblems(request.app);
      if (problems.length > 0) throw invalidArguments(problems);
      await store.deleteApp(request.app);
      await deps.reconciler.kick();
      return { routesVersion: await changes.refresh() };
    },

    watchRoutes(_request, ctx) {
      return changes.watch(ctx.signal);
    },
  };
}
