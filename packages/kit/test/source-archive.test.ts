import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import test from "ava";
import { list } from "tar";
import { packSource, SourceArchiveError } from "@berth/kit/source-archive";

test("a directory is packed as tar.gz with relative paths, without version control data", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "berth-pack-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "Procfile"), "web: node server.js\n");
  mkdirSync(join(dir, "lib"));
  writeFileSync(join(dir, "lib", "app.js"), "export {};\n");
  mkdirSync(join(dir, ".git"));
  writeFileSync(join(dir, ".git", "HEAD"), "ref: refs/heads/main\n");
  const archive = await packSource(dir);
  t.is(archive.sha256, createHash("sha256").update(archive.bytes).digest("hex"));
  t.deepEqual([...archive.bytes.subarray(0, 2)], [0x1f, 0x8b], "gzip magic");
  const entries: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = list({ onReadEntry: (entry) => entries.push(entry.path) });
    parser.on("end", resolve).on("error", reject);
    Readable.from([Buffer.from(archive.bytes)]).pipe(parser);
  });
  t.deepEqual(entries.sort(), ["Procfile", "lib/", "lib/app.js"]);
});

test("a missing or empty directory is refused", async (t) => {
  await t.throwsAsync(packSource("/nonexistent/berth"), { instanceOf: SourceArchiveError, message: /is not a directory/ });
  const empty = mkdtempSync(join(tmpdir(), "berth-pack-empty-"));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  await t.throwsAsync(packSource(empty), { instanceOf: SourceArchiveError, message: /is empty/ });
});
