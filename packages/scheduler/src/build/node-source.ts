import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** The lockfiles `npm ci` installs from, in the order npm prefers them. */
const LOCKFILES = ["npm-shrinkwrap.json", "package-lock.json"];

/** How a Node source is built (as Heroku's Node buildpack does, production dependencies only). */
export interface NodeBuild {
  /** sha256 of the lockfile: the key of the app's cached node_modules. */
  lockfileSha256: string;
  /** Whether package.json has a `build` script, run after the install. */
  hasBuildScript: boolean;
}

/** The `web` process of a Node source without a Procfile, as on Heroku. */
export const NODE_DEFAULT_PROCFILE = "web: npm start\n";

/**
 * The build a source needs: a Node build when it has a package.json and an
 * npm lockfile, undefined otherwise (it deploys as it is). A package.json
 * that is not JSON is a build to run: npm's own error then says what is wrong.
 */
export async function nodeBuildOf(sourceDir: string): Promise<NodeBuild | undefined> {
  const manifest = await readFile(join(sourceDir, "package.json"), "utf8").catch(() => undefined);
  if (manifest === undefined) return undefined;
  for (const name of LOCKFILES) {
    const lockfile = await readFile(join(sourceDir, name)).catch(() => undefined);
    if (lockfile === undefined) continue;
    let scripts: unknown;
    try {
      scripts = (JSON.parse(manifest) as { scripts?: unknown }).scripts;
    } catch {
      scripts = undefined;
    }
    const build = typeof scripts === "object" && scripts !== null ? (scripts as Record<string, unknown>).build : undefined;
    return { lockfileSha256: createHash("sha256").update(lockfile).digest("hex"), hasBuildScript: typeof build === "string" && build.trim() !== "" };
  }
  return undefined;
}

/** The shell command of a build: install unless the cache restored node_modules, then the build script. */
export function nodeBuildCommand(build: NodeBuild, restoredFromCache: boolean): string | undefined {
  const steps = [];
  if (!restoredFromCache) steps.push("npm ci --omit=dev");
  if (build.hasBuildScript) steps.push("npm run build");
  return steps.length === 0 ? undefined : ["set -e", ...steps.map((step) => `echo "> ${step}"; ${step}`)].join("\n");
}
