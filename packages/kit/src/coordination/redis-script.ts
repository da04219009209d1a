import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** Runs a Lua script atomically on Redis: KEYS, then ARGV. */
export type RedisScript = (keys: string[], args: (string | number | Uint8Array)[]) => Promise<unknown>;

/**
 * A Lua script sent by its SHA-1 (EVALSHA), and in full only when the server
 * does not know it yet (first use, or after a restart or SCRIPT FLUSH).
 */
export function defineRedisScript(redis: Redis, lua: string): RedisScript {
  const sha = createHash("sha1").update(lua).digest("hex");
  return async (keys, args) => {
    const argv = args.map((arg) => (arg instanceof Uint8Array ? Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength) : arg));
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...argv);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith("NOSCRIPT"))) throw error;
      return redis.eval(lua, keys.length, ...keys, ...argv);
    }
  };
}
