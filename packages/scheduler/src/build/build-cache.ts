import { existsSync } from "node:fs";
import { cp, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** node_modules of each app's last build, kept between its releases. */
export interface BuildCache {
  /** Copies the cached node_modules into `sourceDir` when they were installed from the same lockfile; true when it did. */
  restore(app: string, lockfileSha256: string, sourceDir: string): Promise<boolean>;
  /** Keeps `sourceDir`'s node_modules as the app's cache, keyed by its lockfile. */
  save(app: string, lockfileSha256: string, sourceDir: string): Promise<void>;
  /** Drops an app's cache (the app is gone). */
  forget(app: string): Promise<void>;
}

/** The cache under `directory`, one folder per app: `node_modules` and the `lockfile.sha256` it was installed from. */
export function createBuildCache(directory: string): BuildCache {
  const appDir = (app: string) => join(directory, app);
  return {
    async restore(app, lockfileSha256, sourceDir) {
      const key = await readFile(join(appDir(app), "lockfile.sha256"), "utf8").catch(() => "");
      const cached = join(appDir(app), "node_modules");
      if (key !== lockfileSha256 || !existsSync(cached)) return false;
      await rm(join(sourceDir, "node_modules"), { recursive: true, force: true });
      await cp(cached, join(sourceDir, "node_modules"), { recursive: true, verbatimSymlinks: true });
      return true;
    },
    async save(app, lockfileSha256, sourceDir) {
      const installed = join(sourceDir, "node_modules");
      if (!existsSync(installed)) return;
      // Written aside and renamed, so that a crash mid-copy leaves the old cache or none, never half of one.
      const staging = `${appDir(app)}.partial`;
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { recursive: true });
      await cp(installed, join(staging, "node_modules"), { recursive: true, verbatimSymlinks: true });
      await writeFile(join(staging, "lockfile.sha256"), lockfileSha256);
      await rm(appDir(app), { recursive: true, force: true });
      await rename(staging, appDir(app));
    },
    async forget(app) {
      await rm(appDir(app), { recursive: true, force: true });
    },
  };
}
