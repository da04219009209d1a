import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { gzipSync } from "node:zlib";
import { demoArchive, deployDemo, INTERNAL_TOKEN, startTestScheduler, uploadArchive } from "./support/scheduler-harness.js";
import { tarOf } from "./support/tar-of.js";

async function refusal(promise: Promise<unknown>): Promise<{ code: Code; fields: string[]; message: string }> {
  try {
    await promise;
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, fields: fieldViolationsOf(error).map((v) => v.field), message: connectError.rawMessage };
  }
  throw new Error("the request was accepted");
}

test("bad input is refused with INVALID_ARGUMENT naming the field, and changes nothing", async (t) => {
  const { client, scheduler } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await deployDemo(client, "shop");
  const formationBefore = await client.getFormation({ app: "shop" });
  const releasesBefore = await client.listReleases({ app: "shop" });

  const cases: [string, Promise<unknown>, string][] = [
    ["unknown type", client.updateFormation({ app: "shop", changes: [{ processType: "nope", replicas: 2 }] }), "changes[0].process_type"],
    ["replicas -1", client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 4294967295 }] }), "changes[0].replicas"],
    ["size huge-9x", client.updateFormation({ app: "shop", changes: [{ processType: "web", size: "huge-9x" }] }), "changes[0].size"],
    ["memoryMb 16", client.updateFormation({ app: "shop", changes: [{ processType: "worker", replicas: 1, memoryMb: 16 }] }), "changes[0].memory_mb"],
    ["cpuMillis 10", client.updateFormation({ app: "shop", changes: [{ processType: "web", cpuMillis: 10 }] }), "changes[0].cpu_millis"],
    [
      "one good and one bad change",
      client.updateFormation({
        app: "shop",
        changes: [
          { processType: "web", replicas: 2 },
          { processType: "worker", size: "huge-9x" },
        ],
      }),
      "changes[1].size",
    ],
    [
      "an autoscale rule with max below min",
      client.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 3, maxReplicas: 2, targetCpuPercent: 50 } }),
      "rule.max_replicas",
    ],
    ["a config key the platform owns", client.updateConfig({ app: "shop", set: { PORT: "80" } }), 'set["PORT"]'],
    ["an app name that is no DNS label", client.createApp({ team: "acme", name: "Bad_Name" }), "name"],
  ];
  const uploadId = await uploadArchive(client, "shop", await demoArchive());
  cases.push([
    "a Procfile line without a command",
    client.createRelease({ app: "shop", artifact: { source: { case: "sourceUploadId", value: uploadId } }, procfile: "web: node web.js\nworker:\n" }),
    "procfile",
  ]);
  for (const [name, call, field] of cases) {
    const { code, fields, message } = await refusal(call);
    t.is(code, Code.InvalidArgument, name);
    t.true(fields.includes(field), `${name}: ${fields.join(", ")} (${message})`);
  }
  const procfileRefusal = await refusal(
    client.createRelease({ app: "shop", artifact: { source: { case: "sourceUploadId", value: uploadId } }, procfile: "web: node web.js\nworker:\n" }),
  );
  t.regex(procfileRefusal.message, /line 2: process type "worker" has no command/);

  const image = await refusal(client.createRelease({ app: "shop", artifact: { source: { case: "image", value: "nginx:1" } } }));
  t.is(image.code, Code.FailedPrecondition, "an image on the local engine: the platform cannot run it");
  t.regex(image.message, /local engine.*berth deploy <dir>.*BERTH_ENGINE=kubernetes/);

  // The Connect protocol over HTTP/1.1 with JSON, as a browser sends it: -1 is no uint32.
  const response = await fetch(`${scheduler.url}/berth.scheduler.v1.SchedulerService/UpdateFormation`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${INTERNAL_TOKEN}` },
    body: JSON.stringify({ app: "shop", changes: [{ processType: "web", replicas: -1 }] }),
  });
  t.is(((await response.json()) as { code: string }).code, "invalid_argument");

  t.deepEqual(await client.getFormation({ app: "shop" }), formationBefore);
  t.deepEqual(await client.listReleases({ app: "shop" }), releasesBefore);
  t.deepEqual((await client.getConfig({ app: "shop" })).config, {});
});

test("manual scaling of an autoscaled type is refused with FAILED_PRECONDITION naming the rule", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  await client.setAutoscale({ app: "shop", rule: { processType: "web", minReplicas: 1, maxReplicas: 3, targetCpuPercent: 70 } });
  const { code, message } = await refusal(client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2 }] }));
  t.is(code, Code.FailedPrecondition);
  t.regex(message, /autoscale rule for "web" \(min 1, max 3, cpu 70%\)/);
  t.deepEqual(
    (await client.listAutoscale({ app: "shop" })).rules.map((rule) => [rule.processType, rule.minReplicas, rule.maxReplicas, rule.targetCpuPercent]),
    [["web", 1, 3, 70]],
  );
  await client.unsetAutoscale({ app: "shop", processType: "web" });
  const { processes } = await client.updateFormation({ app: "shop", changes: [{ processType: "web", replicas: 2 }] });
  t.is(processes[0]?.replicas, 2);
  t.is((await refusal(client.unsetAutoscale({ app: "shop", processType: "web" }))).code, Code.NotFound);
});

test("unknown apps, releases and uploads are NOT_FOUND; names are unique", async (t) => {
  const { client } = await startTestScheduler(t);
  t.is((await refusal(client.getFormation({ app: "ghost" }))).code, Code.NotFound);
  t.is((await refusal(client.uploadSourceChunk({ uploadId: "up-nope", offset: 0n, data: new Uint8Array([1]) }))).code, Code.NotFound);
  await client.createApp({ team: "acme", name: "shop", requestId: "create-1" });
  t.is((await refusal(client.getRelease({ app: "shop", version: 9 }))).code, Code.NotFound);
  t.is((await refusal(client.createApp({ team: "acme", name: "shop" }))).code, Code.AlreadyExists);
  // A retried create with the same request id answers as the first did.
  const again = await client.createApp({ team: "acme", name: "shop", requestId: "create-1" });
  t.is(again.app?.name, "shop");
  // The same id for a different request is refused, and creates nothing.
  const reused = await refusal(client.createApp({ team: "acme", name: "other", requestId: "create-1" }));
  t.is(reused.code, Code.InvalidArgument);
  t.deepEqual(reused.fields, ["request_id"]);
  t.is((await refusal(client.getApp({ name: "other" }))).code, Code.NotFound);
});

test("uploads check the size, offsets and sha256, and refuse archives that escape their directory", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  t.deepEqual((await refusal(client.beginSourceUpload({ app: "shop", sizeBytes: 0n, sha256: "x" }))).fields.sort(), ["sha256", "size_bytes"]);
  const archive = await demoArchive();
  const { uploadId } = await client.beginSourceUpload({ app: "shop", sizeBytes: BigInt(archive.length), sha256: "0".repeat(64) });
  t.is((await refusal(client.uploadSourceChunk({ uploadId, offset: 10n, data: archive.subarray(0, 100) }))).code, Code.FailedPrecondition);
  const half = Math.ceil(archive.length / 2);
  const first = await client.uploadSourceChunk({ uploadId, offset: 0n, data: archive.subarray(0, half) });
  t.deepEqual([first.receivedBytes, first.complete], [BigInt(half), false]);
  // A retried chunk is answered as before.
  t.is((await client.uploadSourceChunk({ uploadId, offset: 0n, data: archive.subarray(0, half) })).receivedBytes, BigInt(half));
  const mismatch = await refusal(client.uploadSourceChunk({ uploadId, offset: BigInt(half), data: archive.subarray(half) }));
  t.is(mismatch.code, Code.InvalidArgument);
  t.deepEqual(mismatch.fields, ["sha256"]);

  const { create } = await import("tar");
  const { createHash } = await import("node:crypto");
  const { mkdtemp, writeFile } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "berth-evil-"));
  await writeFile(join(dir, "Procfile"), "web: node web.js\n");
  const chunks: Buffer[] = [];
  // preservePaths keeps the "../" in the entry name, as a hostile client would send it.
  for await (const chunk of create({ gzip: true, cwd: dir, preservePaths: true }, [
    "Procfile",
    `../${dir.split("/").at(-1)}/Procfile`,
  ]) as AsyncIterable<Buffer>)
    chunks.push(chunk);
  const evil = Buffer.concat(chunks);
  const begun = await client.beginSourceUpload({ app: "shop", sizeBytes: BigInt(evil.length), sha256: createHash("sha256").update(evil).digest("hex") });
  const refused = await refusal(client.uploadSourceChunk({ uploadId: begun.uploadId, offset: 0n, data: evil }));
  t.is(refused.code, Code.InvalidArgument);
  t.regex(refused.message, /points outside the archive/);
});

test("an upload is refused with INVALID_ARGUMENT when its archive escapes through its own links or unpacks past the limit", async (t) => {
  const { client } = await startTestScheduler(t, { BERTH_SCHEDULER_MAX_UNPACKED_BYTES: String(1024 * 1024) });
  await client.createApp({ team: "acme", name: "shop" });
  const escaping = gzipSync(
    tarOf([
      { path: "Procfile", content: "web: node web.js\n" },
      { path: "b/c", type: "SymbolicLink", linkpath: ".." },
      { path: "a", type: "SymbolicLink", linkpath: "b/c/../.." },
    ]),
  );
  const escaped = await refusal(uploadArchive(client, "shop", escaping));
  t.deepEqual([escaped.code, escaped.fields], [Code.InvalidArgument, ["data"]]);
  t.regex(escaped.message, /symbolic link "a" points outside the archive/);
  const bomb = gzipSync(
    tarOf([
      { path: "Procfile", content: "web: node web.js\n" },
      { path: "zeros", content: Buffer.alloc(8 * 1024 * 1024) },
    ]),
  );
  const exploded = await refusal(uploadArchive(client, "shop", bomb));
  t.deepEqual([exploded.code, exploded.fields], [Code.InvalidArgument, ["data"]]);
  t.regex(exploded.message, /unpacks to more than 1048576 bytes/);
});

test("two apps never share a platform hostname, across teams: app a-b's web and app a's b-web are refused in either order", async (t) => {
  const { client } = await startTestScheduler(t);
  const archive = await demoArchive();
  await client.createApp({ team: "acme", name: "a-b" });
  await client.createApp({ team: "other", name: "a" });
  // Deploying a "b-web" to app "a" would claim a-b.<domain>, app "a-b"'s web.
  const clash = await refusal(
    client.createRelease({
      app: "a",
      artifact: { source: { case: "sourceUploadId", value: await uploadArchive(client, "a", archive) } },
      procfile: "b-web: node web.js\n",
    }),
  );
  t.is(clash.code, Code.AlreadyExists);
  t.regex(clash.message, /a-b\.<platform domain>.*"a-b"/);
  t.deepEqual((await client.listReleases({ app: "a" })).releases, [], "nothing was released");
  // The other way round: with "a" serving "b-web", an app "a-b" cannot be created.
  await client.deleteApp({ name: "a-b" });
  await client.createRelease({
    app: "a",
    artifact: { source: { case: "sourceUploadId", value: await uploadArchive(client, "a", archive) } },
    procfile: "b-web: node web.js\n",
  });
  const taken = await refusal(client.createApp({ team: "acme", name: "a-b" }));
  t.is(taken.code, Code.AlreadyExists);
  t.regex(taken.message, /a-b\.<platform domain>/);
  t.is((await refusal(client.getApp({ name: "a-b" }))).code, Code.NotFound, "the app was not created");
});

test("internal callers get the same checks: control characters in ids, versions out of range, NUL in values, the whole environment bounded across calls", async (t) => {
  const { client } = await startTestScheduler(t);
  await client.createApp({ team: "acme", name: "shop" });
  const cases: [string, Promise<unknown>, string][] = [
    ["replica with NUL", client.deleteReplica({ app: "shop", replica: "shop-web-1\u0000" }), "replica"],
    ["upload id with NUL", client.uploadSourceChunk({ uploadId: "up-\u0000", offset: 0n, data: new Uint8Array([1]) }), "upload_id"],
    ["rollout id with NUL", client.getRollout({ app: "shop", rolloutId: "ro-\u0000" }), "rollout_id"],
    ["watched rollout id with NUL", client.watchRollout({ app: "shop", rolloutId: "ro-\u0000" })[Symbol.asyncIterator]().next(), "rollout_id"],
    ["process type with a newline", client.restartProcess({ app: "shop", processType: "web\n" }), "process_type"],
    ["log filter with NUL", client.streamLogs({ app: "shop", replica: "\u0000" })[Symbol.asyncIterator]().next(), "replica"],
    ["consumer with NUL", client.ackEndpoints({ consumer: "router\u0000", generation: 0n }), "consumer"],
    ["release version past 2^31-1", client.getRelease({ app: "shop", version: 2 ** 31 }), "version"],
    ["rollback version past 2^31-1", client.rollback({ app: "shop", version: 2 ** 32 - 1 }), "version"],
    ["config value with NUL", client.updateConfig({ app: "shop", set: { TOKEN: "a\u0000b" } }), 'set["TOKEN"]'],
  ];
  for (const [name, call, field] of cases) {
    const { code, fields, message } = await refusal(call);
    t.is(code, Code.InvalidArgument, name);
    t.deepEqual(fields, [field], `${name}: ${message}`);
  }

  // Each call is small enough; together they would pass the 256 KiB an app's environment may take.
  const vars = (prefix: string) => Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`${prefix}_${i}`, "x".repeat(30_000)]));
  await client.updateConfig({ app: "shop", set: vars("FIRST") });
  const tooMuch = await refusal(client.updateConfig({ app: "shop", set: vars("SECOND") }));
  t.is(tooMuch.code, Code.InvalidArgument);
  t.deepEqual(tooMuch.fields, ["set"]);
  t.regex(tooMuch.message, /environment would take 420\d+ bytes, more than the 262144/);
  t.deepEqual(Object.keys((await client.getConfig({ app: "shop" })).config).sort(), Object.keys(vars("FIRST")).sort());
});
