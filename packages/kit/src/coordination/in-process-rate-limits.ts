import { performance } from "node:perf_hooks";
import type { RateLimits } from "./coordination.js";
import { checkRateLimitArguments } from "./coordination-arguments.js";

/** Rate limits in this process's memory, plus a sweep that forgets idle keys. */
export interface InProcessRateLimits {
  rateLimits: RateLimits;
  sweep(): void;
}

interface Log {
  /** When each allowed call happened, oldest first. */
  allowedAt: number[];
  windowMs: number;
}

/** The sliding-window log of RateLimits, on the monotonic clock. */
export function createInProcessRateLimits(): InProcessRateLimits {
  const logs = new Map<string, Log>();
  const forgetExpired = (log: Log, now: number) => {
    const stillCounted = log.allowedAt.findIndex((at) => at > now - log.windowMs);
    log.allowedAt.splice(0, stillCounted === -1 ? log.allowedAt.length : stillCounted);
  };
  const rateLimits: RateLimits = {
    async take(key, limit, windowMs) {
      checkRateLimitArguments(key, limit, windowMs);
      const now = performance.now();
      const log = logs.get(key) ?? { allowedAt: [], windowMs };
      log.windowMs = windowMs;
      forgetExpired(log, now);
      if (log.allowedAt.length < limit) {
        log.allowedAt.push(now);
        logs.set(key, log);
        return { allowed: true, remaining: limit - log.allowedAt.length, retryAfterMs: 0 };
      }
      // The call that must leave the window before one more fits (the oldest, unless the limit shrank).
      const blocking = log.allowedAt[log.allowedAt.length - limit]!;
      return { allowed: false, remaining: 0, retryAfterMs: Math.ceil(blocking + windowMs - now) };
    },
  };
  const sweep = () => {
    const now = performance.now();
    for (const [key, log] of logs) {
      forgetExpired(log, now);
      if (log.allowedAt.length === 0) logs.delete(key);
    }
  };
  return { rateLimits, sweep };
}
