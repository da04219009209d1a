import { RoutingClass } from "@berth/proto/type/v1/process";
import { hostnameMatches, replicaHostname, replicaNumber, routeHostname } from "@berth/kit";

/** One healthy replica the proxy may send traffic to. */
export interface Upstream {
  readonly replica: string;
  readonly host: string;
  readonly port: number;
  /** The release the replica runs: the requests it serves are counted for it. */
  readonly release: number;
  /** `replica@host:port`: identifies the connection pool of this replica. */
  readonly id: string;
}

/**
 * A web process, or one replica of an rtc process, as the proxy sees it:
 * where its traffic may go right now.
 */
export interface Target {
  /** `app/process_type`, or `app/process_type/NN` for replica NN of an rtc process. */
  readonly key: string;
  readonly team: string;
  readonly app: string;
  readonly processType: string;
  readonly upstreams: readonly Upstream[];
  /**
   * The newest release among the upstreams, kept while there are none: a
   * request that finds no replica is counted as failed for it.
   */
  readonly release: number;
  /** During a canary: the canary's replicas and the serving ones, as targets of their own, and the canary's share. */
  readonly split?: ReleaseSplit;
}

/** A web process's requests split between a canary release and the release that serves. */
export interface ReleaseSplit {
  /** The share (percent) of requests from clients not kept on a release that go to the canary. */
  readonly percent: number;
  /** The canary release's replicas; `release` is the canary's version. */
  readonly canary: Target;
  /** Every other replica; `release` is the newest of them. */
  readonly serving: Target;
}

/** The endpoints of one process type, as the scheduler streams them. */
export interface ProcessEndpointsUpdate {
  team: string;
  app: string;
  processType: string;
  routingClass: RoutingClass;
  /**
   * `replicaIndex` is the replica's number (1, 2, ...), as BERTH_RTC_REPLICA has it;
   * `releaseVersion` is 0 (or missing) where the release is unknown.
   */
  endpoints: readonly { replica: string; host: string; port: number; replicaIndex?: number; releaseVersion?: number }[];
  removed: boolean;
  /** The replica count the process is scaled to (only rtc processes' routes follow it). */
  replicas?: number;
  /** `*-rtc` only: the token of its per-replica hostnames; absent or empty while unknown. */
  rtcRouteToken?: string;
  /** A web type during a canary: the canary release and its share (percent). */
  canary?: { releaseVersion: number; percent: number };
}

/** A custom domain attached to one process. */
export interface DomainBinding {
  hostname: string;
  app: string;
  processType: string;
}

/** An immutable view of the routes: swapped whole, so a lookup never sees half a change. */
export interface RouteSnapshot {
  /** The target serving `hostname` (lowercase, without port), or undefined for an unknown host. */
  lookup(hostname: string): Target | undefined;
  /** The target of `app/processType`, if the process is known. */
  target(key: string): Target | undefined;
}

/** What changed in one update: replicas that left every target must be drained. */
export interface RouteTableChange {
  removedUpstreams: Upstream[];
  addedUpstreams: Upstream[];
}

/** The route table: the current snapshot, updated from the endpoint stream and the domain store. */
export interface RouteTable {
  /** The snapshot in force; read it once per request. */
  readonly current: RouteSnapshot;
  /**
   * Applies endpoint updates; with `snapshot`, processes not listed are forgotten.
   * Returns the upstreams that appeared and disappeared.
   */
  applyEndpoints(updates: readonly ProcessEndpointsUpdate[], snapshot: boolean): RouteTableChange;
  /** Replaces the set of custom domains. */
  setDomains(domains: readonly DomainBinding[]): void;
  /**
   * Resolves with the target of `key` as soon as it has a healthy upstream
   * not in `exclude`, or undefined when `timeoutMs` passes or `signal` aborts first.
   */
  waitForUpstream(key: string, timeoutMs: number, signal?: AbortSignal, exclude?: ReadonlySet<string>): Promise<Target | undefined>;
  /** Called after every swap. */
  onChange(listener: (snapshot: RouteSnapshot) => void): () => void;
}

/** The key of a process: `app/process_type`. */
export function targetKey(app: string, processType: string): string {
  return `${app}/${processType}`;
}

/** The key of one replica of an rtc process: `app/process_type/NN`. */
export function replicaTargetKey(app: string, processType: string, replica: number): string {
  return `${targetKey(app, processType)}/${replicaNumber(replica)}`;
}

/**
 * The targets a process is routed as, each with its hostname: a web
 * process is one target at its platform hostname; an rtc process with a
 * known route token is one target per replica 1..replicas, at
 * `<token>-NN.<domain>`, sending only to the endpoints of that replica
 * (an SFU pins a session to a replica). Other processes are not routed.
 */
export function processTargets(update: ProcessEndpointsUpdate, platformDomain: string): { target: Target; hostname: string | undefined }[] {
  const upstreamOf = (endpoint: ProcessEndpointsUpdate["endpoints"][number]): Upstream => ({
    replica: endpoint.replica,
    host: endpoint.host,
    port: endpoint.port,
    release: endpoint.releaseVersion ?? 0,
    id: `${endpoint.replica}@${endpoint.host}:${endpoint.port}`,
  });
  const { team, app, processType } = update;
  if (update.removed) return [];
  if (update.routingClass === RoutingClass.WEB) {
    const upstreams = update.endpoints.map(upstreamOf);
    const key = targetKey(app, processType);
    const base = { key, team, app, processType };
    const target = { ...base, upstreams, release: newestRelease(upstreams), split: update.canary && splitOf(base, upstreams, update.canary) };
    return [{ target, hostname: routeHostname(app, processType, platformDomain) }];
  }
  const token = update.rtcRouteToken;
  if (update.routingClass !== RoutingClass.RTC || !token) return [];
  return Array.from({ length: update.replicas ?? 0 }, (_, slot) => {
    const replica = slot + 1;
    const upstreams = update.endpoints.filter((endpoint) => endpoint.replicaIndex === replica).map(upstreamOf);
    return {
      target: { key: replicaTargetKey(app, processType, replica), team, app, processType, upstreams, release: newestRelease(upstreams) },
      hostname: replicaHostname(token, replica, platformDomain),
    };
  });
}

/** A web process's targets for its canary release and for the others. */
function splitOf(
  base: Pick<Target, "key" | "team" | "app" | "processType">,
  upstreams: readonly Upstream[],
  canary: { releaseVersion: number; percent: number },
): ReleaseSplit {
  const serving = upstreams.filter((upstream) => upstream.release !== canary.releaseVersion);
  return {
    percent: canary.percent,
    canary: { ...base, upstreams: upstreams.filter((upstream) => upstream.release === canary.releaseVersion), release: canary.releaseVersion },
    serving: { ...base, upstreams: serving, release: newestRelease(serving) },
  };
}

function newestRelease(upstreams: readonly Upstream[]): number {
  return upstreams.reduce((release, upstream) => Math.max(release, upstream.release), 0);
}

class Snapshot implements RouteSnapshot {
  constructor(
    private readonly hosts: ReadonlyMap<string, string>,
    private readonly wildcards: ReadonlyMap<string, string>,
    private readonly targets: ReadonlyMap<string, Target>,
  ) {}

  lookup(hostname: string): Target | undefined {
    let key = this.hosts.get(hostname);
    if (key === undefined && this.wildcards.size > 0) {
      for (const [pattern, wildcardKey] of this.wildcards) {
        if (hostnameMatches(pattern, hostname)) {
          key = wildcardKey;
          break;
        }
      }
    }
    if (key === undefined) return undefined;
    return this.targets.get(key) ?? missingTarget(key);
  }

  target(key: string): Target | undefined {
    return this.targets.get(key);
  }
}

// A custom domain whose process the stream has not (or no longer) shown:
// it is routed, but has nothing to send traffic to.
function missingTarget(key: string): Target {
  const [app = "", processType = ""] = key.split("/");
  return { key, team: "", app, processType, upstreams: [], release: 0 };
}

function hasUpstream(target: Target, exclude: ReadonlySet<string> | undefined): boolean {
  return exclude ? target.upstreams.some((upstream) => !exclude.has(upstream.id)) : target.upstreams.length > 0;
}

interface Waiter {
  key: string;
  exclude: ReadonlySet<string> | undefined;
  resolve: (target: Target | undefined) => void;
}

/** Creates an empty route table for the given platform domain. */
export function createRouteTable(platformDomain: string): RouteTable {
  let targets = new Map<string, Target>();
  // The hostname of each target, and the targets of each process (`app/process_type`).
  let hostnameOf = new Map<string, string>();
  let keysOf = new Map<string, readonly string[]>();
  let domains: readonly DomainBinding[] = [];
  let current: RouteSnapshot = new Snapshot(new Map(), new Map(), targets);
  const waiters = new Set<Waiter>();
  const listeners = new Set<(snapshot: RouteSnapshot) => void>();

  function publish(): void {
    const hosts = new Map<string, string>();
    const wildcards = new Map<string, string>();
    for (const [key, hostname] of hostnameOf) hosts.set(hostname, key);
    for (const domain of domains) {
      const key = targetKey(domain.app, domain.processType);
      if (domain.hostname.startsWith("*.")) wildcards.set(domain.hostname, key);
      else hosts.set(domain.hostname, key);
    }
    current = new Snapshot(hosts, wildcards, targets);
    for (const waiter of waiters) {
      const target = targets.get(waiter.key);
      if (target && hasUpstream(target, waiter.exclude)) {
        waiters.delete(waiter);
        waiter.resolve(target);
      }
    }
    for (const listener of listeners) listener(current);
  }

  return {
    get current() {
      return current;
    },

    applyEndpoints(updates, snapshot) {
      const before = new Map<string, Upstream>();
      for (const target of targets.values()) for (const upstream of target.upstreams) before.set(upstream.id, upstream);
      const next = snapshot ? new Map<string, Target>() : new Map(targets);
      const nextHostnames = snapshot ? new Map<string, string>() : new Map(hostnameOf);
      const nextKeys = snapshot ? new Map<string, readonly string[]>() : new Map(keysOf);
      for (const update of updates) {
        const process = targetKey(update.app, update.processType);
        for (const key of nextKeys.get(process) ?? []) {
          next.delete(key);
          nextHostnames.delete(key);
        }
        const routed = processTargets(update, platformDomain);
        for (const { target, hostname } of routed) {
          const previous = targets.get(target.key);
          next.set(target.key, target.release === 0 && previous ? { ...target, release: previous.release } : target);
          if (hostname !== undefined) nextHostnames.set(target.key, hostname);
        }
        if (routed.length > 0)
          nextKeys.set(
            process,
            routed.map(({ target }) => target.key),
          );
        else nextKeys.delete(process);
      }
      targets = next;
      hostnameOf = nextHostnames;
      keysOf = nextKeys;
      const after = new Map<string, Upstream>();
      for (const target of targets.values()) for (const upstream of target.upstreams) after.set(upstream.id, upstream);
      publish();
      return {
        removedUpstreams: [...before.values()].filter((upstream) => !after.has(upstream.id)),
        addedUpstreams: [...after.values()].filter((upstream) => !before.has(upstream.id)),
      };
    },

    setDomains(next) {
      domains = [...next];
      publish();
    },

    waitForUpstream(key, timeoutMs, signal, exclude) {
      const ready = targets.get(key);
      if (ready && hasUpstream(ready, exclude)) return Promise.resolve(ready);
      if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const finish = (target: Target | undefined) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(target);
        };
        const waiter: Waiter = { key, exclude, resolve: finish };
        const onAbort = () => {
          waiters.delete(waiter);
          finish(undefined);
        };
        const timer = setTimeout(onAbort, timeoutMs);
        signal?.addEventListener("abort", onAbort, { once: true });
        waiters.add(waiter);
      });
    },

    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
