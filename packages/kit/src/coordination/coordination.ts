/**
 * What replicas of a service share without needing it to be durable: leases,
 * event streams and rate limits. Backed by Redis when configured, by process
 * memory otherwise; both backends have the same semantics.
 */
export interface Coordination {
  /** Leader election and per-key locks that expire when their holder dies. */
  readonly leases: Leases;
  /** Ordered, bounded event streams with replay from an id. */
  readonly events: EventStreams;
  /** Sliding-window rate limits, atomic across replicas. */
  readonly rateLimits: RateLimits;
  /** Ends every subscription and releases connections; the instance is unusable afterwards. Idempotent. */
  close(): Promise<void>;
}

/**
 * Named leases with a time to live. A holder is an opaque string that must be
 * unique per process (for example `<hostname>:<pid>:<random>`), so that a
 * restarted process does not mistake its predecessor's lease for its own.
 */
export interface Leases {
  /** True if `holder` now holds `name` for `ttlMs`; re-acquiring one's own lease extends it. */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Extends the lease by `ttlMs` from now; false if `holder` no longer holds it. */
  renew(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up; false (and nothing changes) unless `holder` holds it. */
  release(name: string, holder: string): Promise<boolean>;
  /** The current holder, or undefined when nobody holds the lease. */
  holder(name: string): Promise<string | undefined>;
}

/** One event of a stream. */
export interface StreamEvent {
  /**
   * `<milliseconds>-<sequence>`: ids of one stream are strictly increasing and the
   * sequence counts every event ever published, so a missing number is a lost event.
   */
  readonly id: string;
  readonly payload: Uint8Array;
}

/** Where a subscription starts and how it ends. */
export interface SubscribeOptions {
  /**
   * The id after which to start: an id received earlier to resume, `"0"` for every
   * retained event, `"$"` or undefined for only the events published after
   * `subscribe()` was called (by another replica: after the call reached Redis).
   */
  after?: string;
  /** Aborting ends the iteration (normally, without an error) and frees its connection. */
  signal: AbortSignal;
}

/**
 * Publish/subscribe with replay. Each stream keeps its most recent events (at
 * least `streamMaxLength` of them; Redis trims in whole blocks, so a few more);
 * a subscriber that resumes or falls behind past what was trimmed gets an
 * OUT_OF_RANGE error instead of a silent gap, and must resynchronise from the
 * source of truth and subscribe again from `"$"`.
 */
export interface EventStreams {
  /** Appends an event (a string is stored as UTF-8) and returns its id. */
  publish(stream: string, payload: Uint8Array | string): Promise<string>;
  /**
   * The events after `options.after`, in id order, waiting for new ones until the
   * signal aborts or the Coordination closes. Subscribe before reading the state
   * the events describe, then apply events from the subscription: nothing is missed.
   * Throws INVALID_ARGUMENT at once for an empty stream name or a malformed `after`.
   */
  subscribe(stream: string, options: SubscribeOptions): AsyncIterable<StreamEvent>;
}

/** The answer of a rate limit. */
export interface RateLimitDecision {
  allowed: boolean;
  /** Calls still allowed in the current window after this one. */
  remaining: number;
  /** 0 when allowed; otherwise how long until a call would be allowed. */
  retryAfterMs: number;
}

/**
 * Sliding-window log: a call is allowed when fewer than `limit` calls were
 * allowed for `key` during the last `windowMs`; refused calls do not count.
 */
export interface RateLimits {
  take(key: string, limit: number, windowMs: number): Promise<RateLimitDecision>;
}
