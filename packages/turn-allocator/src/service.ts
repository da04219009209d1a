import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { mintWithinLimit, notFound, turnTtlProblem } from "@berth/kit";
import type { MintingPolicy, RateLimits } from "@berth/kit";
import { MintingPolicySchema, MintingTargetSchema, WatchMintingTargetsResponseSchema } from "@berth/proto/turn/v1/turn";
import type { TurnAllocatorService, WatchMintingTargetsResponse } from "@berth/proto/turn/v1/turn";
import { allocationView, replicaEnvironment } from "./allocation-view.js";
import type { Naming } from "./allocation-view.js";
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
  /** Calls `listener` with each app whose allocations changed on any instance ("" when any may have); returns the unsubscribe. */
  onChange(listener: (app: string) => void): () => void;
  /** Resolves once this instance's gateways run what is stored now (at once when another instance runs them). */
  gatewaysApplied?(): Promise<void>;
  now?: () => Date;
}

/** TurnAllocatorService: ports, names, secrets and credentials of `*-rtc` processes. */
export function createTurnAllocatorService(deps: TurnAllocatorServiceDeps): ServiceImpl<typeof TurnAllocatorService> {
  const { store, naming } = deps;
  const now = deps.now ?? (() => new Date());
  const view = (row: AllocationRow) => allocationView(row, naming, now());
  const policy: MintingPolicy = {
    defaultTtlSeconds: deps.credentialTtl.defaultSeconds,
    minTtlSeconds: deps.credentialTtl.minSeconds,
    maxTtlSeconds: deps.credentialTtl.maxSeconds,
    mintsPerMinute: deps.mintsPerMinute,
  };
  const mintingTargetsOf = async (app?: string) =>
    (await store.list(app)).map((row) =>
      create(MintingTargetSchema, {
        app: row.app,
        processType: row.processType,
        turnHostname: turnHostname(row.routeToken, naming.platformDomain),
        port: row.port,
        secret: row.secret,
        tls: row.tlsReady,
      }),
    );

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
      // Minting here right after this answer signs with the new secret, whenever the announcement comes back.
      deps.mintingTargets.forget(request.app);
      await deps.announceChange(request.app);
      // Credentials minted with the new secret right after this answer must allocate: the gateway knows it first.
      await deps.gatewaysApplied?.();
      return { allocation: view(rotated) };
    },
    async mintCredentials(request) {
      const checks = new RequestChecks().name("app", request.app).rtcProcess("process_type", request.processType).turnUser("user", request.user);
      const ttlProblem = turnTtlProblem(request.ttlSeconds, policy);
      if (ttlProblem !== undefined) checks.add("ttl_seconds", ttlProblem);
      checks.throwIfAny();
      const target = await deps.mintingTargets.get(request.app, request.processType);
      if (!target) throw missing(request.app, request.processType);
      const turn = { turnHostname: turnHostname(target.routeToken, naming.platformDomain), port: target.port, secret: target.secret, tls: target.tlsReady };
      return { credentials: await mintWithinLimit(deps.rateLimits, policy, turn, request, now().getTime()) };
    },
    async *watchMintingTargets(_request, ctx) {
      // Subscribed before the snapshot is read: a change in between is sent again rather than lost.
      const changed = new Set<string>();
      let wake: (() => void) | undefined;
      const stop = deps.onChange((app) => {
        changed.add(app);
        wake?.();
      });
      const onAbort = () => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      const message = (snapshot: boolean, apps: string[], targets: Awaited<ReturnType<typeof mintingTargetsOf>>): WatchMintingTargetsResponse =>
        create(WatchMintingTargetsResponseSchema, { snapshot, apps, targets, policy: create(MintingPolicySchema, policy) });
      try {
        yield message(true, [], await mintingTargetsOf());
        while (!ctx.signal.aborted) {
          if (changed.size === 0) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          const apps = [...changed];
          changed.clear();
          // "" means changes may have been missed: everything again.
          if (apps.includes("")) yield message(true, [], await mintingTargetsOf());
          else yield message(false, apps, (await Promise.all(apps.map((app) => mintingTargetsOf(app)))).flat());
        }
      } finally {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
    async getPool() {
      const range = deps.pools.portRange;
      return { firstPort: range.first, lastPort: range.last, size: rangeSize(range), allocated: await store.countAllocated() };
    },
  };
}
