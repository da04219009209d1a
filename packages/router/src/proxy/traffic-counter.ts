import type { Target } from "../route-table.js";

/** What the proxy counted for one release of one app's process type. */
export interface TrafficTally {
  readonly app: string;
  readonly processType: string;
  readonly release: number;
  requests: number;
  failed: number;
  appErrors: number;
}

/** The counts of one period: requests that ended in [start, end). */
export interface TrafficPeriod {
  readonly start: Date;
  readonly end: Date;
  readonly tallies: readonly TrafficTally[];
}

/**
 * Counts the requests the proxy answered per app, process type and release:
 * every answer, the ones the platform failed (refused or reset replicas after
 * the retries, the proxy's own 502 and 503) and, apart, the app's own 5xx.
 */
export interface TrafficCounter {
  /** A replica of `release` answered with `status` (101 for a WebSocket that opened). */
  answered(target: Target, release: number, status: number): void;
  /** The platform failed a request: `release` is the replica's, or 0 when none was reached. */
  failed(target: Target, release: number): void;
  /** Ends the current period and returns its counts. */
  take(): TrafficPeriod;
}

const tallyKey = (app: string, processType: string, release: number) => `${app}/${processType}@${release}`;

/** Creates a counter whose first period starts now. */
export function createTrafficCounter(now: () => number = Date.now): TrafficCounter {
  let start = now();
  let tallies = new Map<string, TrafficTally>();

  function tally(app: string, processType: string, release: number): TrafficTally {
    const key = tallyKey(app, processType, release);
    let found = tallies.get(key);
    if (found === undefined) {
      found = { app, processType, release, requests: 0, failed: 0, appErrors: 0 };
      tallies.set(key, found);
    }
    return found;
  }

  return {
    answered(target, release, status) {
      const counts = tally(target.app, target.processType, release);
      counts.requests += 1;
      if (status >= 500) counts.appErrors += 1;
    },

    failed(target, release) {
      const counts = tally(target.app, target.processType, release || target.release);
      counts.requests += 1;
      counts.failed += 1;
    },

    take() {
      const end = now();
      const period: TrafficPeriod = { start: new Date(start), end: new Date(end), tallies: [...tallies.values()] };
      start = end;
      tallies = new Map();
      return period;
    },
  };
}

/** One period covering `earlier` and `later` (a report that was lost, then the next one). */
export function mergePeriods(earlier: TrafficPeriod, later: TrafficPeriod): TrafficPeriod {
  const merged = new Map<string, TrafficTally>();
  for (const tally of [...earlier.tallies, ...later.tallies]) {
    const key = tallyKey(tally.app, tally.processType, tally.release);
    const found = merged.get(key);
    if (found === undefined) merged.set(key, { ...tally });
    else {
      found.requests += tally.requests;
      found.failed += tally.failed;
      found.appErrors += tally.appErrors;
    }
  }
  return { start: earlier.start, end: later.end, tallies: [...merged.values()] };
}
