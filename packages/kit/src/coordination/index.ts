export type {
  Coordination,
  EventStreams,
  Leases,
  RateLimitDecision,
  RateLimits,
  StreamEvent,
  SubscribeOptions,
} from "./coordination.js";
export { createCoordination, DEFAULT_STREAM_MAX_LENGTH, type CoordinationOptions } from "./create-coordination.js";
export { holdLease, runWhileLeader, type HeldLease, type HoldLeaseOptions, type RunWhileLeaderOptions } from "./hold-lease.js";
