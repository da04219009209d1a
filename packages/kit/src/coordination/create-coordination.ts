import { invalidArgument } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Coordination } from "./coordination.js";
import { requirePositiveInteger } from "./coordination-arguments.js";
import { createInProcessCoordination } from "./in-process-coordination.js";
import { createRedisCoordination } from "./redis-coordination.js";

/** Events kept per stream unless configured otherwise. */
export const DEFAULT_STREAM_MAX_LENGTH = 10_000;

/** Options of createCoordination; all optional. */
export interface CoordinationOptions {
  /** Use Redis at this URL (`REDIS_URL`); without it, coordination stays within the process. */
  redisUrl?: string;
  /** Prefix of every Redis key; `berth:` by default. */
  keyPrefix?: string;
  /** Events kept per stream; DEFAULT_STREAM_MAX_LENGTH by default. */
  streamMaxLength?: number;
  /** Where Redis connection trouble is reported. */
  logger?: Logger;
}

/** The Redis backend when `redisUrl` is set, the in-process one otherwise. */
export function createCoordination(options: CoordinationOptions = {}): Coordination {
  const { redisUrl, keyPrefix = "berth:", streamMaxLength = DEFAULT_STREAM_MAX_LENGTH, logger } = options;
  requirePositiveInteger("streamMaxLength", streamMaxLength);
  if (redisUrl === undefined || redisUrl === "") return createInProcessCoordination({ streamMaxLength });
  if (!URL.canParse(redisUrl) || !["redis:", "rediss:"].includes(new URL(redisUrl).protocol)) {
    throw invalidArgument("redisUrl", "must be a redis:// or rediss:// URL");
  }
  return createRedisCoordination({ redisUrl, keyPrefix, streamMaxLength, logger });
}
