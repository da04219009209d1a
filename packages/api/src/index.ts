import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { REQUEST_ID_RETENTION_MS, createCoordination, createLogger, serve, startServer } from "@berth/kit";
import type { Coordination, Logger } from "@berth/kit";
import type { Interceptor } from "@connectrpc/connect";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService, RtcService, TrustService } from "@berth/proto/api/v1/network";
import { ProcessService } from "@berth/proto/api/v1/processes";
import { auditMutations } from "./audit.js";
import { loadConsole } from "./console-files.js";
import { bearerGuard, createAuthenticator } from "./auth.js";
import { ensureAdminToken } from "./bootstrap-admin.js";
import { createGitHttp } from "./git/git-http.js";
import { createPushDeployer } from "./git/push-deploy.js";
import { startPushHooks } from "./git/push-hooks.js";
import type { PushHooks } from "./git/push-hooks.js";
import { createGitRepositories } from "./git/repositories.js";
import { startTokenRevocations } from "./token-revocations.js";
import type { ApiConfig } from "./config.js";
import { createPeers } from "./peers.js";
import { startReadModel } from "./read-model/read-model.js";
import type { ReadModel } from "./read-model/read-model.js";
import { createSharedReads } from "./read-model/shared-reads.js";
import { createAppHandlers } from "./services/apps.js";
import { createAppWatch } from "./services/app-watch.js";
import { createDomainService } from "./services/domains.js";
import { createFormationService } from "./services/formation.js";
import { createProcessService } from "./services/processes.js";
import { createReleaseHandlers } from "./services/releases.js";
import { createCanaryHandlers } from "./services/canary.js";
import { createRtcService } from "./services/rtc.js";
import { createTrustService } from "./services/trust.js";
import type { ServiceDeps } from "./services/service-deps.js";
import { createTeamService } from "./services/teams.js";
import { openApiStore } from "./store/index.js";

export { readApiConfig } from "./config.js";
export type { ApiConfig } from "./config.js";

/** Options of startApi beyond the configuration. */
export interface StartApiOptions {
  logger?: Logger;
  /** The Postgres schema; "api" unless a test isolates itself. */
  schema?: string;
  /** Where the bootstrap admin token is shown, once; stdout by default. */
  announce?: (line: string) => void;
  /** Shared with other replicas (token revocations); built from REDIS_URL otherwise, and then closed with the API. */
  coordination?: Coordination;
  /** How long a token is trusted between store reads (revocations end it at once). */
  tokenCacheTtlMs?: number;
  /** Interceptors on every call to a peer; tests use them to hold a peer's stream back. */
  peerInterceptors?: Interceptor[];
}

/** The running public API. */
export interface RunningApi {
  readonly url: string;
  readonly port: number;
  /** The admin token minted by this start (first start without BERTH_ADMIN_TOKEN), else undefined. */
  readonly bootstrapAdminToken: string | undefined;
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts the public API: Connect, gRPC and gRPC-Web on one port, every RPC
 * behind a team's bearer token, composing the internal services over gRPC,
 * and on the same port every app's git remote at /git/<app>.git.
 */
export async function startApi(config: ApiConfig, options: StartApiOptions = {}): Promise<RunningApi> {
  const logger = options.logger ?? createLogger("api", { level: config.logLevel });
  const store = await openApiStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: options.schema, logger });
  const coordination = options.coordination ?? createCoordination({ redisUrl: config.redisUrl, logger });
  const closeCoordination = options.coordination ? async () => {} : () => coordination.close();
  let readModel: ReadModel | undefined;
  let hooks: PushHooks | undefined;
  try {
    const bootstrapAdminToken = await ensureAdminToken(store.tokens, config.adminToken);
    if (bootstrapAdminToken) {
      const announce = options.announce ?? ((line: string) => process.stdout.write(`${line}\n`));
      announce(`berth: bootstrap admin token (shown once, keep it safe): ${bootstrapAdminToken}`);
    }
    const retainedSince = new Date(Date.now() - REQUEST_ID_RETENTION_MS);
    await store.requestIds.prune(retainedSince);
    await store.sourceUploads.prune(retainedSince);

    const authenticator = createAuthenticator(store.tokens, { logger, cacheTtlMs: options.tokenCacheTtlMs });
    const revocations = startTokenRevocations(coordination, authenticator, logger);
    const peers = createPeers(config.peers, {
      internalToken: config.internalToken,
      callTimeoutMs: config.callTimeoutMs,
      interceptors: options.peerInterceptors,
    });
    readModel = startReadModel(peers, { logger });
    const repositories = createGitRepositories(join(config.dataDir, "git"));
    const deps: ServiceDeps = {
      peers,
      repositories,
      store,
      callTimeoutMs: config.callTimeoutMs,
      logger,
      readModel,
      rateLimits: coordination.rateLimits,
      formations: createSharedReads(async (app, options) => (await peers.scheduler.getFormation({ app }, options)).processes, config.callTimeoutMs),
    };
    hooks = await startPushHooks(createPushDeployer(deps), logger);
    const ownerOf = async (app: string) => {
      const known = deps.readModel.owners.teamOf(app);
      if (known !== undefined) return known;
      try {
        return (await peers.scheduler.getApp({ name: app }, { timeoutMs: config.callTimeoutMs })).app?.team;
      } catch (error) {
        if (ConnectError.from(error).code === Code.NotFound) return undefined;
        throw error;
      }
    };
    const gitHttp = createGitHttp({ authenticator, repositories, hooks, ownerOf, logger });
    const consoleFiles = await loadConsole(logger);
    const server = await startServer({
      name: "api",
      host: config.host,
      port: config.port,
      logger,
      cors: { allowedOrigins: config.corsOrigins },
      maxMessageBytes: config.maxMessageBytes,
      guard: bearerGuard(authenticator),
      interceptors: [auditMutations(store.audit, logger)],
      admin: (request, response) => gitHttp(request, response) || consoleFiles(request, response),
      services: [
        serve(TeamService, createTeamService(store, revocations)),
        serve(AppService, { ...createAppHandlers(deps), ...createAppWatch(deps), ...createReleaseHandlers(deps), ...createCanaryHandlers(deps) }),
        serve(FormationService, createFormationService(deps)),
        serve(ProcessService, createProcessService(deps)),
        serve(DomainService, createDomainService(deps)),
        serve(RtcService, createRtcService(deps)),
        serve(TrustService, createTrustService(deps)),
      ],
    });
    return {
      url: server.url,
      port: server.port,
      bootstrapAdminToken,
      async close(graceMs) {
        await server.close(graceMs);
        await hooks?.close();
        await readModel?.close();
        revocations.close();
        await closeCoordination();
        await store.close();
      },
    };
  } catch (error) {
    await hooks?.close();
    await readModel?.close();
    await closeCoordination();
    await store.close();
    throw error;
  }
}
