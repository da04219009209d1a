import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdirSync, symlinkSync } from "node:fs";
import type { WriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { once } from "node:events";
import { finished } from "node:stream/promises";
import { dirname, join, posix } from "node:path";
import { createGunzip } from "node:zlib";
import { ConnectError } from "@connectrpc/connect";
import { Parser } from "tar";
import type { ReadEntry } from "tar";
import { invalidArgument } from "@berth/kit";

/** How much one source archive may unpack to. */
export interface ArchiveLimits {
  /** Bytes of file content, summed over every entry. */
  maxUnpackedBytes: number;
  maxEntries: number;
}

/** Bytes a tar stream may hold beyond its files' content: a header and padding per entry, long-name records, the end blocks. */
const TAR_OVERHEAD_PER_ENTRY = 2048;
const MAX_LINK_HOPS = 40;

/** The tree as unpacked so far, by normalized path: what each path is, and where each link points. */
type NodeKind = "directory" | "file" | "link";

/**
 * Where `target`, read as a symbolic link's content in directory `from`,
 * ends up in the unpacked tree, following the tree's own links as the kernel
 * would; undefined when it leaves the tree at any point.
 */
export function resolveInTree(links: ReadonlyMap<string, string>, from: string[], target: string, hops = 0): string[] | undefined {
  if (target.startsWith("/")) return undefined;
  let parts = [...from];
  for (const component of target.split("/")) {
    if (component === "" || component === ".") continue;
    if (component === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    parts.push(component);
    const link = links.get(parts.join("/"));
    if (link === undefined) continue;
    if (hops >= MAX_LINK_HOPS) return undefined;
    const resolved = resolveInTree(links, parts.slice(0, -1), link, hops + 1);
    if (resolved === undefined) return undefined;
    parts = resolved;
  }
  return parts;
}

/** An entry's path made relative and normalized ("dir/./../x" is "x"); undefined when it leaves the tree. */
function normalizedEntryPath(path: string): string | undefined {
  if (path.startsWith("/")) return undefined;
  const normalized = posix.normalize(path).replace(/\/+$/, "");
  if (normalized === ".." || normalized.startsWith("../")) return undefined;
  return normalized;
}

/**
 * Unpacks a tar.gz source archive into `destination`, streaming: at most
 * `limits` of content and entries, only files, directories and symbolic
 * links whose targets stay inside the tree (resolved through the tree's own
 * links), no entry written through a link, file modes without setuid, setgid
 * or sticky bits. It unpacks into a temporary sibling directory renamed into
 * place once complete, so a refused archive leaves nothing behind. Every
 * problem is INVALID_ARGUMENT on field `data`.
 */
export async function extractSourceArchive(file: string, destination: string, limits: ArchiveLimits): Promise<void> {
  const staging = `${destination}.partial-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(staging, { recursive: true });
    await unpackInto(file, staging, limits);
    await rm(destination, { recursive: true, force: true });
    await rename(staging, destination);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (error instanceof ConnectError) throw error;
    throw invalidArgument("data", `the archive could not be unpacked: ${(error as Error).message}`);
  }
}

async function unpackInto(file: string, root: string, limits: ArchiveLimits): Promise<void> {
  const kinds = new Map<string, NodeKind>();
  const links = new Map<string, string>();
  const writers = new Map<WriteStream, ReadEntry>();
  const writes: Promise<unknown>[] = [];
  let entries = 0;
  let contentBytes = 0;
  let failure: Error | undefined;
  const refuse = (description: string): false => {
    failure ??= invalidArgument("data", description);
    return false;
  };

  /** Unpacks one entry; true when its content is being written (otherwise the caller skips it). */
  function unpackEntry(entry: ReadEntry): boolean {
    entries += 1;
    if (entries > limits.maxEntries) return refuse(`the archive has more than ${limits.maxEntries} entries`);
    const path = normalizedEntryPath(entry.path);
    if (path === undefined) return refuse(`entry "${entry.path}" points outside the archive`);
    if (path === "." || path === "") return false;
    const parts = path.split("/");
    for (let depth = 1; depth < parts.length; depth++) {
      const parent = parts.slice(0, depth).join("/");
      const kind = kinds.get(parent);
      if (kind === "link") return refuse(`entry "${entry.path}" is inside symbolic link "${parent}"`);
      if (kind === "file") return refuse(`entry "${entry.path}" is inside file "${parent}"`);
    }
    const existing = kinds.get(path);
    const target = join(root, path);
    switch (entry.type) {
      case "Directory":
        if (existing === "directory") return false;
        if (existing !== undefined) return refuse(`entry "${entry.path}" appears twice`);
        kinds.set(path, "directory");
        mkdirSync(target, { recursive: true, mode: 0o755 });
        return false;
      case "File":
      case "OldFile":
      case "ContiguousFile": {
        if (existing !== undefined) return refuse(`entry "${entry.path}" appears twice`);
        contentBytes += entry.size ?? 0;
        if (contentBytes > limits.maxUnpackedBytes) return refuse(`the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`);
        kinds.set(path, "file");
        mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
        // Permission bits only (no setuid, setgid or sticky), always readable and writable by the scheduler.
        const writer = createWriteStream(target, { flags: "wx", mode: ((entry.mode ?? 0o644) & 0o777) | 0o600 });
        writers.set(writer, entry);
        entry.pipe(writer);
        writes.push(finished(writer).finally(() => writers.delete(writer)));
        return true;
      }
      case "SymbolicLink": {
        if (existing !== undefined) return refuse(`entry "${entry.path}" appears twice`);
        const linkTarget = entry.linkpath ?? "";
        if (linkTarget === "" || linkTarget.startsWith("/")) return refuse(`symbolic link "${entry.path}" points outside the archive`);
        kinds.set(path, "link");
        links.set(path, linkTarget);
        mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
        symlinkSync(linkTarget, target);
        return false;
      }
      default:
        return refuse(`entry "${entry.path}" is a ${entry.type}; only files, directories and relative symbolic links are allowed`);
    }
  }

  const parser = new Parser({
    strict: true,
    onReadEntry(entry) {
      let writing = false;
      if (failure === undefined) {
        try {
          writing = unpackEntry(entry);
        } catch (error) {
          failure ??= error as Error;
        }
      }
      if (!writing) entry.resume();
    },
  });
  // What follows the end-of-archive blocks is ignored, as tar does; fed on, the parser would buffer all of it.
  let archiveEnded = false;
  parser.on("eof", () => {
    archiveEnded = true;
  });
  const parsed = new Promise<void>((resolve) => {
    parser.on("end", () => resolve());
    parser.on("error", (error: Error) => {
      failure ??= invalidArgument("data", `not a readable tar.gz archive: ${error.message}`);
      resolve();
    });
  });

  // Counted as it is decompressed: a stream of zeros or padding stops here, not after gigabytes.
  const maxStreamBytes = limits.maxUnpackedBytes + TAR_OVERHEAD_PER_ENTRY * (limits.maxEntries + 2);
  let streamBytes = 0;
  const gunzip = createReadStream(file).pipe(createGunzip());
  try {
    for await (const chunk of gunzip) {
      streamBytes += (chunk as Buffer).length;
      if (streamBytes > maxStreamBytes) refuse(`the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`);
      if (failure !== undefined || archiveEnded) break;
      if (!parser.write(chunk as Buffer)) await Promise.race([once(parser, "drain"), parsed]);
    }
  } catch (error) {
    failure ??= invalidArgument("data", `not a readable tar.gz archive: ${(error as Error).message}`);
  }
  gunzip.destroy();
  if (failure === undefined) {
    parser.end();
    await parsed;
  }
  if (failure === undefined) await Promise.all(writes);
  if (failure !== undefined) {
    // Files cut off mid-way: stop writing them; the staging directory goes as a whole.
    for (const [writer, entry] of writers) {
      entry.unpipe(writer);
      writer.destroy();
    }
    await Promise.allSettled(writes);
    throw failure;
  }
  for (const [path, target] of links) {
    if (resolveInTree(links, path.split("/").slice(0, -1), target) === undefined) {
      throw invalidArgument("data", `symbolic link "${path}" points outside the archive`);
    }
  }
}
