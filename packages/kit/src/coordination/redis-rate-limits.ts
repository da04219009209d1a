import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { RateLimits } from "./coordination.js";
import { checkRateLimitArguments } from "./coordination-arguments.js";
import { defineRedisScript } from "./redis-script.js";

// A sorted set of the allowed calls scored by time. Redis's own clock (TIME)
// keeps replicas with skewed clocks from disagreeing about the window.
const TAKE = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - used - 1, 0}
end
local blocking = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
return {0, 0, tonumber(blocking[2]) + window - now}`;

/** The sliding-window log of RateLimits as one Lua script per call. */
export function createRedisRateLimits(redis: Redis, keyPrefix: string): RateLimits {
  const take = defineRedisScript(redis, TAKE);
  return {
    async take(key, limit, windowMs) {
      checkRateLimitArguments(key, limit, windowMs);
      // The member only has to be unique; the score carries the time.
      const [allowed, remaining, retryAfterMs] = (await take([`${keyPrefix}rate:${key}`], [limit, windowMs, randomUUID()])) as number[];
      return { allowed: allowed === 1, remaining: remaining!, retryAfterMs: retryAfterMs! };
    },
  };
}
