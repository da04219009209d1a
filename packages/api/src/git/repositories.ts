import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { gitEnvironment, runGit } from "./git-command.js";

/** The bare git repositories of apps, one per app under one directory. */
export interface GitRepositories {
  /** The directory holding `<app>.git` for every app that was pushed to. */
  readonly root: string;
  /** Where the repository of `app` is (it may not exist yet). */
  pathOf(app: string): string;
  /** The repository of `app`, created empty on first use. */
  ensure(app: string): Promise<string>;
  /** Deletes the repository of `app`, if there is one. */
  remove(app: string): Promise<void>;
}

/** Repositories under `root`. App names are DNS labels, checked before they get here, so they are safe path components. */
export function createGitRepositories(root: string): GitRepositories {
  const pathOf = (app: string) => join(root, `${app}.git`);
  // Two first pushes at once must not both run `git init` on one directory.
  const creating = new Map<string, Promise<string>>();
  return {
    root,
    pathOf,
    ensure(app) {
      const path = pathOf(app);
      if (existsSync(join(path, "HEAD"))) return Promise.resolve(path);
      let pending = creating.get(app);
      if (pending === undefined) {
        pending = (async () => {
          await mkdir(root, { recursive: true });
          // main, so that a clone of the repository checks out what deploys.
          await runGit(["init", "--quiet", "--bare", "--initial-branch=main", path], gitEnvironment());
          return path;
        })().finally(() => creating.delete(app));
        creating.set(app, pending);
      }
      return pending;
    },
    async remove(app) {
      await rm(pathOf(app), { recursive: true, force: true });
    },
  };
}
