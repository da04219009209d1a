import test from "ava";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import { FormationService } from "@berth/proto/api/v1/formation";
import { createSharedReads } from "../src/read-model/shared-reads.js";

function context(timeoutMs?: number) {
  return createHandlerContext({
    service: FormationService,
    method: FormationService.method.getFormation,
    protocolName: "grpc",
    requestMethod: "POST",
    url: "http://127.0.0.1/berth.api.v1.FormationService/GetFormation",
    timeoutMs,
  });
}

/** A peer whose reads finish when the test says so (or are cancelled); each read answers its number. */
function createPeer() {
  const reads: { key: string; options: CallOptions; finish: () => void; fail: (error: Error) => void }[] = [];
  const read = (key: string, options: CallOptions) =>
    new Promise<number>((resolve, reject) => {
      const number = reads.length + 1;
      reads.push({ key, options, finish: () => resolve(number), fail: reject });
      options.signal?.addEventListener("abort", () => reject(ConnectError.from(options.signal!.reason)));
    });
  return { reads, read };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("callers that ask while a read is under way share the next read, never the one that began before them", async (t) => {
  const peer = createPeer();
  const shared = createSharedReads(peer.read, 10_000);
  const first = shared.read("shop", context());
  await tick();
  t.is(peer.reads.length, 1);
  const second = shared.read("shop", context());
  const third = shared.read("shop", context());
  const otherApp = shared.read("blog", context());
  await tick();
  t.deepEqual(
    peer.reads.map((read) => read.key),
    ["shop", "blog"],
    "the callers that came during the first read wait for it to end",
  );
  peer.reads[0]!.finish();
  t.is(await first, 1);
  await tick();
  t.deepEqual(
    peer.reads.map((read) => read.key),
    ["shop", "blog", "shop"],
    "then one read serves both",
  );
  peer.reads[2]!.finish();
  t.deepEqual(await Promise.all([second, third]), [3, 3]);
  peer.reads[1]!.finish();
  t.is(await otherApp, 2);
});

test("a shared read carries the latest deadline of its callers and fails for all of them alike", async (t) => {
  const peer = createPeer();
  const shared = createSharedReads(peer.read, 10_000);
  const first = shared.read("shop", context(1_000));
  const short = shared.read("shop", context(2_000));
  const long = shared.read("shop", context(30_000));
  await tick();
  t.true(Number(peer.reads[0]!.options.timeoutMs) <= 1_000, "a read started for one caller has its deadline");
  peer.reads[0]!.finish();
  await first;
  await tick();
  const timeoutMs = Number(peer.reads[1]!.options.timeoutMs);
  t.true(timeoutMs > 2_000 && timeoutMs <= 30_000, `the shared read has ${timeoutMs} ms`);
  peer.reads[1]!.fail(new ConnectError("scheduler down", Code.Unavailable));
  for (const result of [short, long]) t.is(ConnectError.from(await t.throwsAsync(result)).code, Code.Unavailable);
});

test("a caller that gives up leaves at once; the read is cancelled when no caller is left", async (t) => {
  const peer = createPeer();
  const shared = createSharedReads(peer.read, 10_000);
  const aloneContext = context();
  const alone = shared.read("shop", aloneContext);
  await tick();
  const leaving = context();
  const staying = context();
  const left = shared.read("shop", leaving);
  const stays = shared.read("shop", staying);
  aloneContext.abort(new ConnectError("client went away", Code.Canceled));
  t.is(ConnectError.from(await t.throwsAsync(alone)).code, Code.Canceled);
  t.true(peer.reads[0]!.options.signal!.aborted, "the read nobody waits for is cancelled");
  await tick();
  leaving.abort(new ConnectError("client went away", Code.Canceled));
  t.is(ConnectError.from(await t.throwsAsync(left)).code, Code.Canceled);
  t.false(peer.reads[1]!.options.signal!.aborted, "the read goes on for the caller still waiting");
  peer.reads[1]!.finish();
  t.is(await stays, 2);
  await t.throwsAsync(shared.read("shop", aloneContext), undefined, "a caller already gone starts nothing");
  t.is(peer.reads.length, 2);
});

test("a read that throws at once fails its callers and leaves the key free for the next", async (t) => {
  let calls = 0;
  const shared = createSharedReads((key: string) => {
    calls++;
    if (calls === 1) throw new ConnectError(`no ${key} yet`, Code.Unavailable);
    return Promise.resolve(calls);
  }, 10_000);
  t.is(ConnectError.from(await t.throwsAsync(shared.read("shop", context()))).code, Code.Unavailable);
  t.is(await shared.read("shop", context()), 2);
});
