import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import type { StreamResponse } from "@connectrpc/connect";
import { observeCall } from "../src/call-outcome.js";

/** A stream response of `messages`, failing with `error` after them when given. */
function streamOf(messages: number[], error?: Error): StreamResponse {
  return {
    stream: true,
    message: (async function* () {
      for (const message of messages) yield message;
      if (error) throw error;
    })(),
  } as unknown as StreamResponse;
}

/** Runs `response` through observeCall, reading `read` messages (all when undefined); returns what the hooks saw. */
async function observe(response: StreamResponse, read?: number) {
  const ends: (Code | "OK")[] = [];
  const observed = await observeCall(async () => response, {
    ended: (error) => {
      ends.push(error === undefined ? "OK" : ConnectError.from(error).code);
    },
    mapError: (error) => new ConnectError(`mapped: ${(error as Error).message}`, Code.Unavailable),
  });
  const received: unknown[] = [];
  let failure: unknown;
  try {
    for await (const message of observed.message) {
      received.push(message);
      if (received.length === read) break;
    }
  } catch (error) {
    failure = error;
  }
  return { ends, received, failure };
}

test("a stream that finishes ends once, OK, after its last message", async (t) => {
  const { ends, received } = await observe(streamOf([1, 2, 3]));
  t.deepEqual(received, [1, 2, 3]);
  t.deepEqual(ends, ["OK"]);
});

test("a stream that fails ends once with its error, and its reader sees the mapped error", async (t) => {
  const { ends, received, failure } = await observe(streamOf([1], new ConnectError("gone", Code.NotFound)));
  t.deepEqual(received, [1]);
  t.deepEqual(ends, [Code.NotFound]);
  t.is(ConnectError.from(failure).code, Code.Unavailable);
});

test("a stream whose reader stops early ends once, CANCELED", async (t) => {
  const { ends, received } = await observe(streamOf([1, 2, 3]), 1);
  t.deepEqual(received, [1]);
  t.deepEqual(ends, [Code.Canceled]);
});

test("a call that fails before any message ends once, and throws the mapped error", async (t) => {
  const ends: unknown[] = [];
  const failing = observeCall(
    async () => {
      throw new ConnectError("no", Code.PermissionDenied);
    },
    { ended: (error) => void ends.push(ConnectError.from(error).code), mapError: () => new ConnectError("mapped", Code.Unavailable) },
  );
  t.is(ConnectError.from(await t.throwsAsync(failing)).code, Code.Unavailable);
  t.deepEqual(ends, [Code.PermissionDenied]);
});
