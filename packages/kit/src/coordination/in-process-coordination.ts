import type { Coordination } from "./coordination.js";
import { createEventStreams } from "./event-streams.js";
import { createInProcessLeases } from "./in-process-leases.js";
import { createInProcessRateLimits } from "./in-process-rate-limits.js";
import { createInProcessStreamStorage } from "./in-process-stream-storage.js";

/** How often expired leases and idle rate-limit keys are forgotten. */
const SWEEP_INTERVAL_MS = 60_000;

/** Options of createInProcessCoordination. */
export interface InProcessCoordinationOptions {
  /** Events kept per stream. */
  streamMaxLength: number;
}

/**
 * Coordination within one process: the default when there is no Redis, where a
 * single replica of each service runs. Same semantics as the Redis backend.
 */
export function createInProcessCoordination({ streamMaxLength }: InProcessCoordinationOptions): Coordination {
  const { leases, sweep: sweepLeases } = createInProcessLeases();
  const { rateLimits, sweep: sweepRateLimits } = createInProcessRateLimits();
  const events = createEventStreams(createInProcessStreamStorage(streamMaxLength));
  const sweeper = setInterval(() => {
    sweepLeases();
    sweepRateLimits();
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();
  return {
    leases,
    rateLimits,
    events: events.events,
    async close() {
      clearInterval(sweeper);
      events.close();
    },
  };
}
