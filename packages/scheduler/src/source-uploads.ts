import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { join, normalize } from "node:path";
import type { Database } from "@berth/kit";
import { createFieldChecks, failedPrecondition, invalidArgument, notFound, resourceExhausted } from "@berth/kit";
import { extractSourceArchive } from "./archive-extraction.js";
import type { ArchiveLimits } from "./archive-extraction.js";
import { deleteUpload, findUpload, insertUpload, saveUploadProgress, uploadsUnderWay } from "./store/uploads.js";
import type { UploadRecord } from "./store/uploads.js";

/** How many unfinished source uploads, and how many bytes of them, one team may have. */
export interface UploadTeamLimits {
  maxUploadsPerTeam: number;
  maxUploadBytesPerTeam: number;
  uploadTtlMs: number;
}

/** Source archives arriving in chunks, checked and unpacked under the data directory. */
export interface SourceUploads {
  /** Starts an upload for `app` of `team`: RESOURCE_EXHAUSTED when the team's unfinished uploads reach a cap. */
  begin(team: string, app: string, sizeBytes: number, sha256: string): Promise<{ uploadId: string; maxChunkBytes: number }>;
  chunk(uploadId: string, offset: number, data: Uint8Array): Promise<{ receivedBytes: number; complete: boolean }>;
  /** A complete upload of `app`, or an INVALID_ARGUMENT naming `field`. */
  completed(app: string, uploadId: string, field: string): Promise<UploadRecord>;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Creates the upload handler. Archives go to `<directory>/uploads/<id>.tar.gz`
 * and are unpacked into `<directory>/sources/<id>/` once the last chunk
 * arrived and the sha256 matched (see extractSourceArchive for what an
 * archive may hold).
 */
export function createSourceUploads(options: {
  db: Database;
  directory: string;
  maxUploadBytes: number;
  maxChunkBytes: number;
  archiveLimits: ArchiveLimits;
  /** Caps on each team's unfinished uploads (untouched for `uploadTtlMs`, one is abandoned and not counted). */
  teamLimits: UploadTeamLimits;
}): SourceUploads {
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
    const target = sourcePath(upload.id);
    await mkdir(join(options.directory, "sources"), { recursive: true });
    await extractSourceArchive(archivePath(upload.id), target, options.archiveLimits);
    await rm(archivePath(upload.id), { force: true });
    return normalize(target);
  }

  return {
    async begin(team, app, sizeBytes, sha256) {
      const checks = createFieldChecks();
      if (sizeBytes <= 0 || sizeBytes > options.maxUploadBytes) {
        checks.add("size_bytes", `must be between 1 and ${options.maxUploadBytes} bytes, got ${sizeBytes}`);
      }
      if (!/^[0-9a-f]{64}$/.test(sha256)) checks.add("sha256", "must be 64 lowercase hex digits");
      checks.throwIfAny();
      const uploadId = `up-${randomBytes(12).toString("hex")}`;
      await mkdir(join(options.directory, "uploads"), { recursive: true });
      await (await open(archivePath(uploadId), "w")).close();
      const limits = options.teamLimits;
      try {
        await db.transaction(async (tx) => {
          // One team's uploads begin one at a time, so that two at once cannot both pass the cap.
          await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`source-uploads:${team}`]);
          const underWay = await uploadsUnderWay(tx, team, new Date(Date.now() - limits.uploadTtlMs));
          if (underWay.count >= limits.maxUploadsPerTeam) {
            throw resourceExhausted(
              `team "${team}" has ${underWay.count} source uploads under way, the most a team may have (BERTH_SCHEDULER_MAX_UPLOADS_PER_TEAM=${limits.maxUploadsPerTeam}); finish them, or wait ${Math.round(limits.uploadTtlMs / 60_000)} minutes for abandoned ones to expire`,
            );
          }
          if (underWay.bytes + sizeBytes > limits.maxUploadBytesPerTeam) {
            throw resourceExhausted(
              `team "${team}" would have ${underWay.bytes + sizeBytes} bytes of source uploads under way, more than the ${limits.maxUploadBytesPerTeam} a team may have (BERTH_SCHEDULER_MAX_UPLOAD_BYTES_PER_TEAM)`,
            );
          }
          await insertUpload(tx, { id: uploadId, app, sizeBytes, sha256 });
        });
      } catch (error) {
        await rm(archivePath(uploadId), { force: true });
        throw error;
      }
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
