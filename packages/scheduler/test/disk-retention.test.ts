import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { RolloutState } from "@berth/proto/type/v1/release";
import { demoArchive, deployDemo, eventually, startTestScheduler, uploadArchive } from "./support/scheduler-harness.js";

const entries = (directory: string) => readdir(directory).catch(() => [] as string[]);

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("the request was accepted");
}

test("sources and release task directories are pruned to the releases a rollback can reach; a rollback past them is refused", async (t) => {
  const { client, dataDir } = await startTestScheduler(t, { BERTH_SCHEDULER_RELEASES_KEPT: "2" });
  const files = join(dataDir, "apps");
  await client.createApp({ team: "acme", name: "shop" });
  for (let deploy = 1; deploy <= 3; deploy++) t.is((await deployDemo(client, "shop")).rollout.state, RolloutState.SUCCEEDED, `deploy ${deploy}`);
  const releases = (await client.listReleases({ app: "shop" })).releases;
  const sourceOf = (version: number) => releases.find((release) => release.version === version)!.artifact!.source.value as string;

  await eventually(
    async () => ((await entries(join(files, "tasks"))).length === 2 && (await entries(join(files, "sources"))).length === 2 ? true : undefined),
    "two sources and release task directories left",
  );
  t.deepEqual((await entries(join(files, "sources"))).sort(), [sourceOf(2), sourceOf(3)].sort());
  t.deepEqual((await entries(join(files, "tasks"))).sort(), ["shop-release-v2", "shop-release-v3"]);

  const tooOld = await refusal(client.rollback({ app: "shop", version: 1 }));
  t.is(tooOld.code, Code.FailedPrecondition);
  t.regex(tooOld.rawMessage, /v1's source was removed to save disk \(the latest 2 releases keep theirs, BERTH_SCHEDULER_RELEASES_KEPT\)/);
  const { rollout } = await client.rollback({ app: "shop", version: 2 });
  t.truthy(rollout, "a release within reach rolls back");
});

test("deleting an app removes its sources, uploads and release task directories, and nothing of another app", async (t) => {
  const { client, dataDir } = await startTestScheduler(t);
  const files = join(dataDir, "apps");
  await client.createApp({ team: "acme", name: "shop" });
  await client.createApp({ team: "acme", name: "other" });
  await deployDemo(client, "shop");
  const archive = await demoArchive();
  const sha256 = createHash("sha256").update(archive).digest("hex");
  // An unfinished upload of each app, and a finished one of shop that no release uses.
  const unfinished = await client.beginSourceUpload({ app: "shop", sizeBytes: BigInt(archive.length), sha256 });
  const othersUpload = await client.beginSourceUpload({ app: "other", sizeBytes: BigInt(archive.length), sha256 });
  const unused = await uploadArchive(client, "shop", archive);
  t.is((await entries(join(files, "sources"))).length, 2);
  t.deepEqual((await entries(join(files, "uploads"))).sort(), [`${unfinished.uploadId}.tar.gz`, `${othersUpload.uploadId}.tar.gz`].sort());
  t.deepEqual(await entries(join(files, "tasks")), ["shop-release-v1"]);

  await client.deleteApp({ name: "shop" }, { timeoutMs: 30_000 });
  await eventually(async () => ((await entries(join(files, "sources"))).length === 0 ? true : undefined), "shop's sources gone");
  t.false((await entries(join(files, "sources"))).includes(unused));
  t.deepEqual(await entries(join(files, "uploads")), [`${othersUpload.uploadId}.tar.gz`]);
  t.deepEqual(await entries(join(files, "tasks")), []);
  t.deepEqual(await entries(join(files, "replicas")), [], "the replicas' log directories");
});

test("a team's unfinished uploads are capped with RESOURCE_EXHAUSTED naming the cap; abandoned ones expire with their files", async (t) => {
  const { client, dataDir } = await startTestScheduler(t, {
    BERTH_SCHEDULER_MAX_UPLOADS_PER_TEAM: "2",
    BERTH_SCHEDULER_MAX_UPLOAD_BYTES_PER_TEAM: "10000",
    BERTH_SCHEDULER_UPLOAD_TTL_MS: "2000",
  });
  const files = join(dataDir, "apps");
  for (const [team, name] of [
    ["acme", "shop"],
    ["acme", "blog"],
    ["globex", "store"],
  ] as const) {
    await client.createApp({ team, name });
  }
  const begin = (app: string, sizeBytes: number) => client.beginSourceUpload({ app, sizeBytes: BigInt(sizeBytes), sha256: "0".repeat(64) });
  const first = await begin("shop", 100);
  await begin("blog", 100);
  const third = await refusal(begin("shop", 100));
  t.is(third.code, Code.ResourceExhausted);
  t.regex(third.rawMessage, /team "acme" has 2 source uploads under way, the most a team may have \(BERTH_SCHEDULER_MAX_UPLOADS_PER_TEAM=2\)/);
  await begin("store", 6000);
  const bytes = await refusal(begin("store", 6000));
  t.is(bytes.code, Code.ResourceExhausted);
  t.regex(bytes.rawMessage, /12000 bytes .* more than the 10000 a team may have \(BERTH_SCHEDULER_MAX_UPLOAD_BYTES_PER_TEAM\)/);
  t.is((await entries(join(files, "uploads"))).length, 3, "refused uploads leave no file");

  // A finished upload no release uses expires too, with its unpacked source.
  const unused = await uploadArchive(client, "store", await demoArchive());
  t.deepEqual(await entries(join(files, "sources")), [unused]);
  await eventually(
    async () => ((await entries(join(files, "uploads"))).length === 0 && (await entries(join(files, "sources"))).length === 0 ? true : undefined),
    "abandoned uploads gone",
    15_000,
  );
  t.is((await refusal(client.uploadSourceChunk({ uploadId: first.uploadId, offset: 0n, data: new Uint8Array(100) }))).code, Code.NotFound);
  await begin("shop", 100);
  await begin("shop", 100);
});
