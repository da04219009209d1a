import { Redis } from "ioredis";
import type { Logger } from "../logger.js";
import type { Coordination } from "./coordination.js";
import { createEventStreams } from "./event-streams.js";
import { createRedisLeases } from "./redis-leases.js";
import { createRedisRateLimits } from "./redis-rate-limits.js";
import { createRedisStreamStorage } from "./redis-stream-storage.js";

/** Options of createRedisCoordination. */
export interface RedisCoordinationOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  redisUrl: string;
  /** Prepended to every key, so that several deployments can share one Redis. */
  keyPrefix: string;
  /** Events kept per stream (approximately, at least this many). */
  streamMaxLength: number;
  logger?: Logger;
}

/**
 * Coordination through Redis, shared by every replica pointed at the same
 * server and prefix. One connection serves commands; each subscription has its own.
 */
export function createRedisCoordination({ redisUrl, keyPrefix, streamMaxLength, logger }: RedisCoordinationOptions): Coordination {
  // Named after the prefix so that an operator can tell berth's connections apart in CLIENT LIST.
  const connectionName = `berth:${keyPrefix}`.replace(/[^\x21-\x7e]/g, "_");
  const redis = new Redis(redisUrl, { connectionName });
  redis.on("error", (error: Error) => logger?.warn("redis connection failed", { error }));
  const events = createEventStreams(
    createRedisStreamStorage(redis, { keyPrefix, maxLength: streamMaxLength, subscriberName: `${connectionName}:subscriber`, logger }),
  );
  let closed: Promise<void> | undefined;
  return {
    leases: createRedisLeases(redis, keyPrefix),
    rateLimits: createRedisRateLimits(redis, keyPrefix),
    events: events.events,
    close() {
      closed ??= (async () => {
        events.close();
        await redis.quit();
      })();
      return closed;
    },
  };
}
