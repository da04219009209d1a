// Bundles the web console (web/) into dist/: index.html, console.js and
// console.css, which the API serves on its own port. The root `prepare`
// script runs it on `npm install` / `npm ci`; the API runs `ensureBundle` at
// start-up, which bundles again only when a source is newer than dist/.
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const dist = `${packageDir}dist/`;

/** The folder the API serves the console from. */
export const consoleDir = dist;

/**
 * Builds dist/ in a fresh folder, then renames it into place, so an API
 * starting at the same time never serves half a bundle. dist/inputs.json
 * lists the sources (relative to dist/, outside node_modules) for
 * `ensureBundle`. Returns esbuild's metafile, for tests that check what the
 * page holds.
 */
export async function bundle() {
  const { build } = await import("esbuild");
  const staging = `${packageDir}dist.${process.pid}.${Date.now()}.tmp/`;
  mkdirSync(staging, { recursive: true });
  try {
    const result = await build({
      absWorkingDir: packageDir,
      entryPoints: { console: "web/main.tsx" },
      outdir: staging,
      bundle: true,
      minify: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      jsx: "automatic",
      jsxImportSource: "preact",
      metafile: true,
      logLevel: "warning",
      legalComments: "none",
    });
    copyFileSync(`${packageDir}web/index.html`, `${staging}index.html`);
    const inputs = [...Object.keys(result.metafile.inputs).filter((path) => !path.includes("node_modules/")), "web/index.html"].map((path) => `../${path}`);
    writeFileSync(`${staging}inputs.json`, `${JSON.stringify(inputs)}\n`);
    rmSync(dist, { recursive: true, force: true });
    try {
      renameSync(staging, dist);
    } catch (error) {
      // Another process bundling at the same time put its dist/ there first.
      if (!bundleIsCurrent()) throw error;
    }
    return result.metafile;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function bundleIsCurrent() {
  try {
    const built = statSync(`${dist}console.js`).mtimeMs;
    const inputs = JSON.parse(readFileSync(`${dist}inputs.json`, "utf8"));
    return inputs.every((path) => statSync(`${dist}${path}`).mtimeMs <= built);
  } catch {
    return false;
  }
}

/**
 * Makes sure dist/ holds the console built from the current sources
 * (bundling when it is missing or a source changed since) and returns its
 * folder.
 */
export async function ensureBundle() {
  if (!bundleIsCurrent()) await bundle();
  return dist;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
