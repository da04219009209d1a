import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import test from "ava";
import type { ExecutionContext } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { fieldViolationsOf } from "@berth/kit";
import { extractSourceArchive } from "../src/archive-extraction.js";
import type { ArchiveLimits } from "../src/archive-extraction.js";
import { tarOf } from "./support/tar-of.js";
import type { TarEntry } from "./support/tar-of.js";

const LIMITS: ArchiveLimits = { maxUnpackedBytes: 1024 * 1024, maxEntries: 100 };

async function place(t: ExecutionContext, archive: Buffer) {
  const dir = await mkdtemp(join(tmpdir(), "berth-archive-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "source.tar.gz");
  await writeFile(file, archive);
  return { dir, file, destination: join(dir, "sources", "up-1") };
}

async function refusal(t: ExecutionContext, archive: Buffer, limits = LIMITS): Promise<string> {
  const { dir, file, destination } = await place(t, archive);
  const error = ConnectError.from(await t.throwsAsync(extractSourceArchive(file, destination, limits)));
  t.is(error.code, Code.InvalidArgument);
  t.deepEqual(
    fieldViolationsOf(error).map((violation) => violation.field),
    ["data"],
  );
  // Nothing half-written is left: no destination, no temporary directory.
  t.deepEqual(await readdir(join(dir, "sources")).catch(() => []), []);
  return error.rawMessage;
}

test("links are resolved through the tree's own links: b/c -> .. plus a -> b/c/../.. escapes", async (t) => {
  const archive = gzipSync(
    tarOf([
      { path: "b/", type: "Directory" },
      { path: "b/c", type: "SymbolicLink", linkpath: ".." },
      { path: "a", type: "SymbolicLink", linkpath: "b/c/../.." },
    ]),
  );
  t.regex(await refusal(t, archive), /symbolic link "a" points outside the archive/);
});

test("absolute paths, .. paths, absolute links, hard links, devices and entries inside a link are refused", async (t) => {
  const cases: [TarEntry[], RegExp][] = [
    [[{ path: "/etc/passwd", content: "x" }], /points outside the archive/],
    [[{ path: "../x", content: "x" }], /points outside the archive/],
    [[{ path: "dir/../../x", content: "x" }], /points outside the archive/],
    [[{ path: "l", type: "SymbolicLink", linkpath: "/etc" }], /points outside the archive/],
    [[{ path: "l", type: "SymbolicLink", linkpath: "../../other-team" }], /points outside the archive/],
    [[{ path: "h", type: "Link", linkpath: "Procfile" }], /only files, directories and relative symbolic links/],
    [[{ path: "dev", type: "CharacterDevice" }], /only files, directories and relative symbolic links/],
    [
      [
        { path: "sub/", type: "Directory" },
        { path: "a", type: "SymbolicLink", linkpath: "sub" },
        { path: "a/x", content: "x" },
      ],
      /inside symbolic link "a"/,
    ],
    [
      [
        { path: "f", content: "1" },
        { path: "f", content: "2" },
      ],
      /appears twice/,
    ],
  ];
  for (const [entries, message] of cases) t.regex(await refusal(t, gzipSync(tarOf(entries))), message, entries[0]!.path);
});

test("a legitimate archive with a symlinked directory and dir/./../x unpacks; setuid and setgid bits are dropped", async (t) => {
  const { file, destination } = await place(
    t,
    gzipSync(
      tarOf([
        { path: "src/lib/", type: "Directory" },
        { path: "src/lib/index.js", content: "module.exports = 1;\n" },
        { path: "lib", type: "SymbolicLink", linkpath: "src/lib" },
        { path: "src/./../Procfile", content: "web: node web.js\n" },
        { path: "bin/run", content: "#!/bin/sh\n", mode: 0o6755 },
        { path: "up", type: "SymbolicLink", linkpath: "lib/.." },
      ]),
    ),
  );
  await extractSourceArchive(file, destination, LIMITS);
  t.is(await readFile(join(destination, "Procfile"), "utf8"), "web: node web.js\n");
  t.is(await readFile(join(destination, "lib", "index.js"), "utf8"), "module.exports = 1;\n");
  t.is(await readlink(join(destination, "lib")), "src/lib");
  t.is((await stat(join(destination, "bin", "run"))).mode & 0o7777, 0o755);
});

test("an archive is refused while it streams once it passes the unpacked size or the entry count, naming the limit", async (t) => {
  // 1 KiB of gzip announcing a 64 MiB file.
  const announced = gzipSync(tarOf([{ path: "big", size: 64 * 1024 * 1024 }]));
  t.regex(await refusal(t, announced), /unpacks to more than 1048576 bytes/);
  const many = gzipSync(tarOf(Array.from({ length: 101 }, (_, i) => ({ path: `f${i}`, content: "x" }))));
  t.regex(await refusal(t, many), /more than 100 entries/);
  t.regex(await refusal(t, gzipSync(Buffer.from("not a tar archive at all, just text".repeat(40)))), /not a readable tar.gz archive/);
  t.regex(await refusal(t, gzipSync(Buffer.alloc(8 * 1024 * 1024)), { maxUnpackedBytes: 64 * 1024 * 1024, maxEntries: 100 }), /not a readable tar.gz archive/);
  t.regex(await refusal(t, Buffer.from("not even gzip")), /not a readable tar.gz archive/);
});

test("what follows the end of the archive is not read: an archive trailed by zeros unpacks what it holds", async (t) => {
  const archive = gzipSync(Buffer.concat([tarOf([{ path: "Procfile", content: "web: node web.js\n" }]), Buffer.alloc(64 * 1024 * 1024)]));
  const { file, destination } = await place(t, archive);
  await extractSourceArchive(file, destination, { maxUnpackedBytes: 256 * 1024 * 1024, maxEntries: 100 });
  t.deepEqual(await readdir(destination), ["Procfile"]);
});
