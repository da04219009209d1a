import { createHash } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { create as createTar } from "tar";

/** A directory that cannot be packed: missing, not a directory, or empty. */
export class SourceArchiveError extends Error {
  override name = "SourceArchiveError";
}

/** A directory packed for upload. */
export interface SourceArchive {
  bytes: Uint8Array;
  /** Hex sha256 of `bytes`. */
  sha256: string;
}

// Version control data is never part of a release.
const EXCLUDED = new Set([".git", ".hg", ".svn"]);

/**
 * Packs a directory into a tar.gz, paths relative to it, without version
 * control data: the archive the scheduler's BeginSourceUpload accepts.
 */
export async function packSource(dir: string): Promise<SourceArchive> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new SourceArchiveError(`${dir} is not a directory`);
  const entries = (await readdir(dir)).filter((name) => !EXCLUDED.has(name)).sort();
  if (entries.length === 0) throw new SourceArchiveError(`${dir} is empty`);
  const chunks: Buffer[] = [];
  const pack = createTar({ gzip: true, cwd: dir, portable: true, filter: (path) => !path.split("/").some((part) => EXCLUDED.has(part)) }, entries);
  for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  const bytes = new Uint8Array(Buffer.concat(chunks));
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}
