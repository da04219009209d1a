import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { DEFAULT_MAX_MESSAGE_BYTES, silentLogger, startServer } from "@berth/kit";
import type { Coordination, RunningServer, ServiceRegistration } from "@berth/kit";
import { readNetpolConfig, startNetpol } from "@berth/netpol";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService, RtcService, TrustService } from "@berth/proto/api/v1/network";
import { ProcessService } from "@berth/proto/api/v1/processes";
import { readTurnAllocatorConfig, startTurnAllocator } from "@berth/turn-allocator";
import { startApi } from "../../src/index.js";
import type { ApiConfig, RunningApi } from "../../src/index.js";
import { createRouterStandIn, createSchedulerStandIn } from "./peer-stand-ins.js";
import type { Timeline } from "./peer-stand-ins.js";
import { testDatabaseUrl } from "@berth/kit/testing";

/** The test PostgreSQL; each harness gets its own schema. */
export const TEST_DATABASE_URL = testDatabaseUrl;
export const INTERNAL_TOKEN = "internal-token-for-api-tests";

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Typed clients of the public API for one bearer token, over Connect on HTTP/1.1 as a browser would call. */
export function apiClients(url: string, token: string | undefined) {
  const bearer: Interceptor = (next) => (request) => {
    if (token !== undefined) request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [bearer] });
  const client = <T extends DescService>(service: T): Client<T> => createClient(service, transport);
  return {
    teams: client(TeamService),
    apps: client(AppService),
    formation: client(FormationService),
    processes: client(ProcessService),
    domains: client(DomainService),
    rtc: client(RtcService),
    trust: client(TrustService),
  };
}

/** Creates team `name` as the admin, and a token for it; returns the token and the team's clients. */
export async function createTeamClients(admin: ReturnType<typeof apiClients>, apiUrl: string, name: string) {
  await admin.teams.createTeam({ name });
  const { token, secret } = await admin.teams.createToken({ team: name, description: `${name} test token` });
  return { token: secret, tokenId: token!.id, clients: apiClients(apiUrl, secret) };
}

/** What a harness started: the API, its peers and an admin. */
export interface ApiHarness {
  api: RunningApi;
  config: ApiConfig;
  schema: string;
  adminToken: string;
  admin: ReturnType<typeof apiClients>;
  scheduler: ReturnType<typeof createSchedulerStandIn>;
  router: ReturnType<typeof createRouterStandIn>;
  /** Every call to the scheduler and router stand-ins, in order. */
  timeline: Timeline;
  /** Creates a team and a token for it; returns the team's clients. */
  team(name: string): Promise<{ token: string; tokenId: string; clients: ReturnType<typeof apiClients> }>;
  /** Creates an app for a team and tells the router stand-in about it. */
  createApp(clients: ReturnType<typeof apiClients>, name: string): Promise<void>;
}

async function startPeer(t: Teardown, services: ServiceRegistration[], interceptors: Interceptor[]): Promise<RunningServer> {
  const server = await startServer({ name: "stand-in", port: 0, services, logger: silentLogger, internalToken: INTERNAL_TOKEN, interceptors });
  t.teardown(() => server.close(500));
  return server;
}

/** Options of startApiHarness. */
export interface ApiHarnessOptions {
  /** Use the embedded PostgreSQL cluster under a temporary directory instead of the test PostgreSQL. */
  embedded?: boolean;
  adminToken?: string;
  /** Shared coordination (a test of several replicas passes a Redis one), with the TURN allocator too. */
  coordination?: Coordination;
  tokenCacheTtlMs?: number;
  /** Extra TURN allocator environment (minting policy). */
  turnEnv?: Record<string, string>;
  peerInterceptors?: Interceptor[];
}

/**
 * Starts the API on its own schema of the test PostgreSQL (or the embedded cluster), with
 * stand-ins for the scheduler and router and the real turn-allocator and netpol.
 */
export async function startApiHarness(t: Teardown, options: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const timeline: Timeline = [];
  const scheduler = createSchedulerStandIn(timeline);
  const router = createRouterStandIn(timeline);
  const schedulerServer = await startPeer(t, [scheduler.registration], [scheduler.log.interceptor]);
  const routerServer = await startPeer(t, [router.registration], [router.log.interceptor]);
  const dataDir = mkdtempSync(join(tmpdir(), "berth-api-test-"));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const common = {
    host: "127.0.0.1",
    port: 0,
    databaseUrl: options.embedded ? undefined : TEST_DATABASE_URL,
    redisUrl: undefined,
    dataDir,
    internalToken: INTERNAL_TOKEN,
    platformDomain: "berth.localhost",
    logLevel: "error" as const,
    maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  };
  const turnAllocatorConfig = readTurnAllocatorConfig({
    BERTH_DATA_DIR: dataDir,
    BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN,
    BERTH_TURN_ALLOCATOR_PORT: "0",
    BERTH_TURN_ALLOCATOR_SCHEMA: `turn_test_${randomBytes(6).toString("hex")}`,
    DATABASE_URL: common.databaseUrl,
    ...options.turnEnv,
  });
  // No gateways here: the TURN allocator's own tests run coturn.
  const turnAllocator = await startTurnAllocator(
    { ...turnAllocatorConfig, ...common },
    { logger: silentLogger, gateways: false, coordination: options.coordination },
  );
  t.teardown(() => turnAllocator.close(500));
  const netpolSchema = `netpol_test_${randomBytes(6).toString("hex")}`;
  const netpol = await startNetpol(
    { ...readNetpolConfig({ BERTH_INTERNAL_TOKEN: INTERNAL_TOKEN, BERTH_DATA_DIR: dataDir }), ...common, schedulerUrl: schedulerServer.url },
    { logger: silentLogger, schema: netpolSchema },
  );
  t.teardown(async () => {
    await netpol.close(500);
    if (!options.embedded) await dropSchema(netpolSchema);
  });
  const config: ApiConfig = {
    ...common,
    peers: { scheduler: schedulerServer.url, router: routerServer.url, turnAllocator: turnAllocator.url, netpol: netpol.url },
    adminToken: options.adminToken,
    corsOrigins: ["*"],
    // Generous: tests share a loaded machine.
    callTimeoutMs: 60_000,
  };
  const schema = `api_test_${randomBytes(6).toString("hex")}`;
  let announced = "";
  const api = await startApi(config, {
    logger: silentLogger,
    schema,
    announce: (line) => (announced += line),
    coordination: options.coordination,
    tokenCacheTtlMs: options.tokenCacheTtlMs,
    peerInterceptors: options.peerInterceptors,
  });
  t.teardown(async () => {
    await api.close(500);
    if (!options.embedded) await dropSchema(schema);
  });
  const adminToken = options.adminToken ?? /(berth_\S+)/.exec(announced)?.[1];
  if (!adminToken) throw new Error(`no admin token was announced: "${announced}"`);
  const admin = apiClients(api.url, adminToken);
  return {
    api,
    config,
    schema,
    adminToken,
    admin,
    scheduler,
    router,
    timeline,
    team: (name) => createTeamClients(admin, api.url, name),
    async createApp(clients, name) {
      await clients.apps.createApp({ name });
      router.knowApp(name);
    },
  };
}

/** Drops a test's schema from the real PostgreSQL. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
