import { readdir, rm } from "node:fs/promises";
import { join, normalize } from "node:path";
import type { Database, Logger } from "@berth/kit";
import { findApp } from "./store/apps.js";
import { listReleases, forgetReleaseSources } from "./store/releases.js";
import { findActiveRollout } from "./store/rollouts.js";
import { deleteUploadsOfApp, expireUploads, listUploadsOfApp } from "./store/uploads.js";

/** What the scheduler keeps on disk, and for how long. */
export interface RetentionSettings {
  /** The latest releases of an app whose source stays on disk for a rollback. */
  releasesKept: number;
  /** An upload untouched this long is abandoned: its archive, or its unused source, goes. */
  uploadTtlMs: number;
}

/**
 * The scheduler's files of apps, bounded: every deploy unpacks a source
 * directory (`<directory>/sources/<upload>`) and its release phase leaves a
 * task directory (`<directory>/tasks/<app>-release-v<n>`). Only what a
 * rollback can still reach is kept.
 */
export interface DiskRetention {
  /**
   * Keeps the sources and release task directories of the app's latest
   * releases, the one serving and those of a rollout under way; older
   * releases lose their source (a rollback to them is refused).
   */
  pruneApp(app: string): Promise<void>;
  /** Removes every file of an app being deleted: sources, uploads, release task directories. Call before its rows go. */
  removeApp(app: string): Promise<void>;
  /** Forgets uploads untouched for the upload TTL: archives of unfinished ones, sources no release uses. */
  expireUploads(now?: Date): Promise<number>;
}

const taskPattern = (app: string) => new RegExp(`^${app}-release-v([0-9]+)$`);

/** Creates the retention of the files under `directory` (the scheduler's `apps` directory). */
export function createDiskRetention(options: { db: Database; directory: string; settings: RetentionSettings; logger: Logger }): DiskRetention {
  const { db, directory, settings, logger } = options;
  const sources = normalize(join(directory, "sources"));
  const archivePath = (id: string) => join(directory, "uploads", `${id}.tar.gz`);
  // Only directories the scheduler unpacked itself are ever removed.
  const removeSource = async (sourceDir: string) => {
    if (sourceDir !== "" && normalize(sourceDir).startsWith(`${sources}/`)) await rm(sourceDir, { recursive: true, force: true });
  };
  const taskDirectories = async (app: string) => {
    const names = await readdir(join(directory, "tasks")).catch(() => [] as string[]);
    const pattern = taskPattern(app);
    return names.flatMap((name) => {
      const match = pattern.exec(name);
      return match ? [{ path: join(directory, "tasks", name), version: Number(match[1]) }] : [];
    });
  };

  return {
    async pruneApp(app) {
      const record = await findApp(db, app);
      if (record === undefined) return;
      const rollout = await findActiveRollout(db, app);
      const releases = await listReleases(db, app);
      const kept = new Set(releases.slice(0, settings.releasesKept).map((release) => release.version));
      for (const version of [record.currentReleaseVersion, rollout?.releaseVersion, rollout?.previousReleaseVersion]) {
        if (version !== undefined && version > 0) kept.add(version);
      }
      const keptSources = new Set(releases.filter((release) => kept.has(release.version)).map((release) => release.sourceDir));
      const pruned = releases.filter((release) => !kept.has(release.version) && release.sourceDir !== "");
      const removable = [...new Set(pruned.map((release) => release.sourceDir))].filter((sourceDir) => !keptSources.has(sourceDir));
      // The rows first: a rollback never starts on a directory about to go.
      await forgetReleaseSources(
        db,
        app,
        pruned.map((release) => release.version),
      );
      for (const task of await taskDirectories(app)) {
        if (!kept.has(task.version)) await rm(task.path, { recursive: true, force: true });
      }
      for (const sourceDir of removable) await removeSource(sourceDir);
      if (removable.length > 0) logger.info("pruned old sources", { app, sources: removable.length, releasesKept: settings.releasesKept });
    },

    async removeApp(app) {
      const releases = await listReleases(db, app);
      const uploads = await listUploadsOfApp(db, app);
      for (const sourceDir of new Set([...releases.map((release) => release.sourceDir), ...uploads.map((upload) => upload.sourceDir)])) {
        await removeSource(sourceDir);
      }
      for (const upload of uploads) await rm(archivePath(upload.id), { force: true });
      for (const task of await taskDirectories(app)) await rm(task.path, { recursive: true, force: true });
      await deleteUploadsOfApp(db, app);
    },

    async expireUploads(now = new Date()) {
      const expired = await expireUploads(db, new Date(now.getTime() - settings.uploadTtlMs));
      for (const upload of expired) {
        await rm(archivePath(upload.id), { force: true });
        if (!upload.sourceInUse) await removeSource(upload.sourceDir);
      }
      return expired.length;
    },
  };
}
