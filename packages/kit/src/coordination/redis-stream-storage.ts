import type { Redis } from "ioredis";
import type { Logger } from "../logger.js";
import type { StreamEvent } from "./coordination.js";
import { STREAM_READ_BATCH, type StreamReader, type StreamStorage } from "./event-streams.js";
import { defineRedisScript } from "./redis-script.js";
import { STREAM_START_ID } from "./stream-ids.js";

// XADD with an explicit id instead of "*": the sequence part counts every event
// of the stream (see nextStreamId), which lets subscribers detect trimmed or
// lost events. TIME is Redis's clock, shared by every publisher.
const APPEND = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local lastMs, lastSequence = 0, 0
if #last > 0 then
  local id = last[1][1]
  local dash = string.find(id, '-', 1, true)
  lastMs = tonumber(string.sub(id, 1, dash - 1))
  lastSequence = tonumber(string.sub(id, dash + 1))
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local id = string.format('%.0f-%.0f', math.max(now, lastMs), lastSequence + 1)
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, 'p', ARGV[2])`;

/** Options of createRedisStreamStorage. */
export interface RedisStreamStorageOptions {
  keyPrefix: string;
  maxLength: number;
  /** CLIENT SETNAME of the subscribers' connections. */
  subscriberName: string;
  logger?: Logger;
}

type XReadReply = [key: Buffer, entries: [id: Buffer, fields: Buffer[]][]][] | null;

/**
 * Streams as Redis Streams. Each reader blocks in XREAD on a connection of its
 * own (a blocked connection can do nothing else); closing the reader
 * disconnects it, which also ends the pending XREAD at once.
 */
export function createRedisStreamStorage(redis: Redis, { keyPrefix, maxLength, subscriberName, logger }: RedisStreamStorageOptions): StreamStorage {
  const append = defineRedisScript(redis, APPEND);
  const keyOf = (stream: string) => `${keyPrefix}stream:${stream}`;
  return {
    async append(stream, payload) {
      return String(await append([keyOf(stream)], [maxLength, payload]));
    },
    async lastId(stream) {
      const [newest] = await redis.xrevrange(keyOf(stream), "+", "-", "COUNT", 1);
      return newest?.[0] ?? STREAM_START_ID;
    },
    openReader(stream) {
      let closed = false;
      // A blocked XREAD is resent after a reconnect, so a subscriber survives a
      // Redis restart instead of failing after the default retry budget.
      const connection = redis.duplicate({ maxRetriesPerRequest: null, connectionName: subscriberName });
      connection.on("error", (error: Error) => logger?.warn("redis subscriber connection failed", { error, stream }));
      const reader: StreamReader = {
        get closed() {
          return closed;
        },
        async read(after) {
          if (closed) return [];
          let reply: XReadReply;
          try {
            reply = (await connection.xreadBuffer("COUNT", STREAM_READ_BATCH, "BLOCK", 0, "STREAMS", keyOf(stream), after)) as XReadReply;
          } catch (error) {
            if (closed) return [];
            throw error;
          }
          return (reply?.[0]?.[1] ?? []).map(([id, fields]): StreamEvent => ({ id: id.toString(), payload: payloadOf(fields) }));
        },
        close() {
          if (closed) return;
          closed = true;
          connection.disconnect();
        },
      };
      return reader;
    },
  };
}

/** The payload field of an entry, as a plain Uint8Array view (no copy). */
function payloadOf(fields: Buffer[]): Uint8Array {
  const payload = fields[1] ?? Buffer.alloc(0);
  return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
}
