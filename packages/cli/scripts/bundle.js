// Bundles the CLI into dist/berth.js, so that `berth` starts without tsx
// transpiling its sources on every call. The root `prepare` script runs it on
// `npm install` / `npm ci`; bin/berth.js runs it again when a source changed.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const packageDir = fileURLToPath(new URL("..", import.meta.url));

/**
 * Builds dist/berth.js and dist/inputs.json (the sources it was built from,
 * relative to dist/, outside node_modules), each written whole then renamed
 * so a `berth` running at the same time never reads half a file.
 * Returns esbuild's metafile, for tests that check what the bundle holds.
 */
export async function bundle() {
  const dist = `${packageDir}dist/`;
  mkdirSync(dist, { recursive: true });
  const suffix = `.${process.pid}.tmp`;
  const result = await build({
    absWorkingDir: packageDir,
    entryPoints: ["src/main.ts"],
    outfile: `dist/berth.js${suffix}`,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    metafile: true,
    logLevel: "warning",
    // Some bundled CommonJS modules call require() for Node's built-ins.
    banner: { js: 'import { createRequire as __berthRequire } from "node:module"; const require = __berthRequire(import.meta.url);' },
  });
  const inputs = Object.keys(result.metafile.inputs)
    .filter((path) => !path.includes("node_modules/"))
    .map((path) => `../${path}`);
  writeFileSync(`${dist}inputs.json${suffix}`, `${JSON.stringify(inputs)}\n`);
  renameSync(`${dist}inputs.json${suffix}`, `${dist}inputs.json`);
  renameSync(`${dist}berth.js${suffix}`, `${dist}berth.js`);
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
