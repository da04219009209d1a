import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { isAbsolute, join, normalize, posix } from "node:path";
import { extract, list } from "tar";
import type { Database } from "@berth/kit";
import { failedPrecondition, invalidArgument, invalidArguments, notFound } from "@berth/kit";
import type { FieldViolation } from "@berth/kit";
import { deleteUpload, findUpload, insertUpload, saveUploadProgress } from "./store/uploads.js";
import type { UploadRecord } from "./store/uploads.js";

/** Source archives arriving in chunks, checked and unpacked under the data directory. */
export interface SourceUploads {
  begin(app: string, sizeBytes: number, sha256: string): Promise<{ uploadId: string; maxChunkBytes: number }>;
  chunk(uploadId: string, offset: number, data: Uint8Array): Promise<{ receivedBytes: number; complete: boolean }>;
  /** A complete upload of `app`, or an INVALID_ARGUMENT naming `field`. */
  completed(app: string, uploadId: string, field: string): Promise<UploadRecord>;
}

const SAFE_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink"]);

/** Why an archive entry may not be unpacked, or undefined when it may. */
function entryProblem(path: string, type: string, linkpath: string | undefined): string | undefined {
  const normalized = posix.normalize(path);
  if (isAbsolute(path) || normalized.startsWith("../") || normalized === "..") return `entry "${path}" points outside the archive`;
  if (!SAFE_TYPES.has(type)) return `entry "${path}" is a ${type}; only files, directories and relative symbolic links are allowed`;
  if (type === "SymbolicLink") {
    const target = posix.normalize(posix.join(posix.dirname(normalized), linkpath ?? ""));
    if (isAbsolute(linkpath ?? "") || target.startsWith("../") || target === "..") return `symbolic link "${path}" points outside the archive`;
  }
  return undefined;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Creates the upload handler. Archives go to `<directory>/uploads/<id>.tar.gz`
 * and are unpacked into `<directory>/sources/<id>/` once the last chunk
 * arrived and the sha256 matched, after every entry was checked: no absolute
 * paths, no `..`, no links out of the tree, no devices.
 */
export function createSourceUploads(options: { db: Database; directory: string; maxUploadBytes: number; maxChunkBytes: number }): SourceUploads {
  const { db } = options;
  const archivePath = (id: string) => join(options.directory, "uploads", `${id}.tar.gz`);
  const sourcePath = (id: string) => join(options.directory, "sources", id);
  // Chunks of one upload are handled one at a time.
  const locks = new Map<string, Promise<unknown>>();
  const serialize = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const run = (locks.get(id) ?? Promise.resolve()).then(fn, fn);
    const settled = run.catch(() => undefined);
    locks.set(id, settled);
    void settled.then(() => locks.get(id) === settled && locks.delete(id));
    return run;
  };

  async function unpack(upload: UploadRecord): Promise<string> {
    const file = archivePath(upload.id);
    const problems: string[] = [];
    try {
      await list({
        file,
        strict: true,
        onReadEntry: (entry) => {
          const problem = entryProblem(entry.path, entry.type, entry.linkpath);
          if (problem !== undefined && problems.length < 5) problems.push(problem);
        },
      });
    } catch (error) {
      problems.push(`not a readable tar.gz archive: ${(error as Error).message}`);
    }
    if (problems.length > 0) throw invalidArguments(problems.map((description) => ({ field: "data", description })));
    const target = sourcePath(upload.id);
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    await extract({ file, cwd: target, strict: true, preservePaths: false, preserveOwner: false, filter: (_path, entry) => !("type" in entry) || SAFE_TYPES.has(String(entry.type)) });
    await rm(file, { force: true });
    return normalize(target);
  }

  return {
    async begin(app, sizeBytes, sha256) {
      const violations: FieldViolation[] = [];
      if (sizeBytes <= 0 || sizeBytes > options.maxUploadBytes) {
        violations.push({ field: "size_bytes", description: `must be between 1 and ${options.maxUploadBytes} bytes, got ${sizeBytes}` });
      }
      if (!/^[0-9a-f]{64}$/.test(sha256)) violations.push({ field: "sha256", description: "must be 64 lowercase hex digits" });
      if (violations.length > 0) throw invalidArguments(violations);
      const uploadId = `up-${randomBytes(12).toString("hex")}`;
      await mkdir(join(options.directory, "uploads"), { recursive: true });
      await (await open(archivePath(uploadId), "w")).close();
      await insertUpload(db, { id: uploadId, app, sizeBytes, sha256 });
      return { uploadId, maxChunkBytes: options.maxChunkBytes };
    },

    chunk(uploadId, offset, data) {
      return serialize(uploadId, async () => {
        const upload = await findUpload(db, uploadId);
        if (upload === undefined) throw notFound(`source upload "${uploadId}" not found`);
        const end = offset + data.length;
        // A retried chunk that already arrived is answered as before.
        if (upload.complete || (end <= upload.receivedBytes && data.length > 0)) {
          return { receivedBytes: upload.receivedBytes, complete: upload.complete };
        }
        if (data.length === 0) throw invalidArgument("data", "must not be empty");
        if (data.length > options.maxChunkBytes) throw invalidArgument("data", `must be at most ${options.maxChunkBytes} bytes per chunk, got ${data.length}`);
        if (end > upload.sizeBytes) throw invalidArgument("data", `goes past the announced size of ${upload.sizeBytes} bytes`);
        if (offset !== upload.receivedBytes) throw failedPrecondition(`upload "${uploadId}" expects offset ${upload.receivedBytes}, got ${offset}`);
        const handle = await open(archivePath(uploadId), "r+");
        try {
          await handle.write(data, 0, data.length, offset);
        } finally {
          await handle.close();
        }
        if (end < upload.sizeBytes) {
          await saveUploadProgress(db, uploadId, end, false);
          return { receivedBytes: end, complete: false };
        }
        const digest = await sha256Of(archivePath(uploadId));
        if (digest !== upload.sha256) {
          await deleteUpload(db, uploadId);
          await rm(archivePath(uploadId), { force: true });
          throw invalidArgument("sha256", `the archive's sha256 is ${digest}, not ${upload.sha256}; begin a new upload`);
        }
        let sourceDir: string;
        try {
          sourceDir = await unpack(upload);
        } catch (error) {
          await deleteUpload(db, uploadId);
          await rm(archivePath(uploadId), { force: true });
          throw error;
        }
        await saveUploadProgress(db, uploadId, end, true, sourceDir);
        return { receivedBytes: end, complete: true };
      });
    },

    async completed(app, uploadId, field) {
      const upload = await findUpload(db, uploadId);
      if (upload === undefined || upload.app !== app) throw invalidArgument(field, `no source upload "${uploadId}" for app "${app}"`);
      if (!upload.complete) throw invalidArgument(field, `source upload "${uploadId}" is not complete (${upload.receivedBytes} of ${upload.sizeBytes} bytes)`);
      return upload;
    },
  };
}
