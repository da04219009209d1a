import type { Redis } from "ioredis";
import type { Leases } from "./coordination.js";
import { checkLeaseArguments, requireNonEmpty } from "./coordination-arguments.js";
import { defineRedisScript } from "./redis-script.js";

// Each script compares the holder and changes the key in one atomic step, so a
// lease that expired and was taken by another holder in between is never touched.
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/** Leases as Redis keys holding the holder, expiring with PX. */
export function createRedisLeases(redis: Redis, keyPrefix: string): Leases {
  const acquire = defineRedisScript(redis, ACQUIRE);
  const renew = defineRedisScript(redis, RENEW);
  const release = defineRedisScript(redis, RELEASE);
  const keyOf = (name: string) => `${keyPrefix}lease:${name}`;
  return {
    async acquire(name, holder, ttlMs) {
      checkLeaseArguments(name, holder, ttlMs);
      return (await acquire([keyOf(name)], [holder, ttlMs])) === 1;
    },
    async renew(name, holder, ttlMs) {
      checkLeaseArguments(name, holder, ttlMs);
      return (await renew([keyOf(name)], [holder, ttlMs])) === 1;
    },
    async release(name, holder) {
      checkLeaseArguments(name, holder);
      return (await release([keyOf(name)], [holder])) === 1;
    },
    async holder(name) {
      requireNonEmpty("name", name);
      return (await redis.get(keyOf(name))) ?? undefined;
    },
  };
}
