import type { ServiceImpl } from "@connectrpc/connect";
import { notFound, resourceExhausted } from "@berth/kit";
import type { RateLimits } from "@berth/kit";
import type { TurnAllocatorService } from "@berth/proto/turn/v1/turn";
import { allocationView, replicaEnvironment } from "./allocation-view.js";
import type { Naming } from "./allocation-view.js";
import { anonymousUser, mintTurnCredentials } from "./credentials.js";
import type { MintingTargets } from "./minting-targets.js";
import { turnHostname } from "./names.js";
import { rangeSize } from "./port-range.js";
import { RequestChecks } from "./request-checks.js";
import type { AllocationRow, AllocationStore, Pools } from "./store/allocation-store.js";

/** The most replicas an rtc process may have names for. */
export const MAX_RTC_REPLICAS = 1000;

/** What the TurnAllocatorService handlers are built from. */
export interface TurnAllocatorServiceDeps {
  store: AllocationStore;
  pools: Pools;
  naming: Naming;
  credentialTtl: { defaultSeconds: number; minSeconds: number; maxSeconds: number };
  rotationGraceSeconds: number;
  mintsPerMinute: number;
  rateLimits: RateLimits;
  mintingTargets: MintingTargets;
  /** Announces that an app's allocations changed, to the gateways and every allocator instance. */
  announceChange(app: string): Promise<void>;
  now?: () => Date;
}

const MINUTE_MS = 60_000;

/** TurnAllocatorService: ports, names, secrets and credentials of `*-rtc` processes. */
export function createTurnAllocatorService(deps: TurnAllocatorServiceDeps): ServiceImpl<typeof TurnAllocatorService> {
  const { store, naming } = deps;
  const now = deps.now ?? (() => new Date());
  const view = (row: AllocationRow) => allocationView(row, naming, now());

  const missing = (app: string, processType: string) =>
    notFound(`app ${app} has no TURN allocation for process ${processType}: deploy it with a ${processType} process first`);
  async function existing(app: string, processType: string): Promise<AllocationRow> {
    const row = await store.get(app, processType);
    if (!row) throw missing(app, processType);
    return row;
  }

  return {
    async ensureAllocation(request) {
      new RequestChecks()
        .name("team", request.team)
        .name("app", request.app)
        .rtcProcess("process_type", request.processType)
        .within("replicas", request.replicas, 0, MAX_RTC_REPLICAS)
        .throwIfAny();
      const { allocation } = await store.ensure(request, deps.pools);
      await deps.announceChange(request.app);
      return { allocation: view(allocation) };
    },
    async getAllocation(request) {
      new RequestChecks().name("app", request.app).rtcProcess("process_type", request.processType).throwIfAny();
      return { allocation: view(await existing(request.app, request.processType)) };
    },
    async listAllocations(request) {
      if (request.app !== "") new RequestChecks().name("app", request.app).throwIfAny();
      const rows = await store.list(request.app === "" ? undefined : request.app);
      return { allocations: rows.map(view) };
    },
    async releaseAllocation(request) {
      new RequestChecks().name("app", request.app).rtcProcess("process_type", request.processType).throwIfAny();
      // Idempotent: releasing what is already gone is what the caller wanted.
      if (await store.release(request.app, request.processType)) await deps.announceChange(request.app);
      return {};
    },
    async releaseApp(request) {
      new RequestChecks().name("app", request.app).throwIfAny();
      const released = await store.releaseApp(request.app);
      if (released.length > 0) await deps.announceChange(request.app);
      return { releasedPorts: released.length };
    },
    async getReplicaEnv(request) {
      new RequestChecks()
        .name("app", request.app)
        .rtcProcess("process_type", request.processType)
        .within("replica", request.replica, 1, MAX_RTC_REPLICAS)
        .throwIfAny();
      return { env: replicaEnvironment(await existing(request.app, request.processType), request.replica, naming) };
    },
    async rotateSecret(request) {
      new RequestChecks().name("app", request.app).rtcProcess("process_type", request.processType).throwIfAny();
      const rotated = await store.rotate(request.app, request.processType, deps.rotationGraceSeconds);
      if (!rotated) throw missing(request.app, request.processType);
      await deps.announceChange(request.app);
      return { allocation: view(rotated) };
    },
    async mintCredentials(request) {
      const { minSeconds, maxSeconds, defaultSeconds } = deps.credentialTtl;
      const checks = new RequestChecks().name("app", request.app).rtcProcess("process_type", request.processType).turnUser("user", request.user);
      if (request.ttlSeconds !== 0) checks.within("ttl_seconds", request.ttlSeconds, minSeconds, maxSeconds);
      checks.throwIfAny();
      const target = await deps.mintingTargets.get(request.app, request.processType);
      if (!target) throw missing(request.app, request.processType);
      const decision = await deps.rateLimits.take(`turn-mint:${request.app}`, deps.mintsPerMinute, MINUTE_MS);
      if (!decision.allowed) {
        throw resourceExhausted(
          `app ${request.app} may mint ${deps.mintsPerMinute} TURN credentials per minute: retry in ${Math.ceil(decision.retryAfterMs / 1000)} s`,
        );
      }
      const credentials = mintTurnCredentials(
        { turnHostname: turnHostname(target.routeToken, naming.platformDomain), port: target.port, secret: target.secret },
        request.user === "" ? anonymousUser() : request.user,
        request.ttlSeconds === 0 ? defaultSeconds : request.ttlSeconds,
        now().getTime(),
      );
      return { credentials };
    },
    async getPool() {
      const range = deps.pools.portRange;
      return { firstPort: range.first, lastPort: range.last, size: rangeSize(range), allocated: await store.countAllocated() };
    },
  };
}
