// Bundles of a package's TypeScript entry point for plain `node`, built at
// `npm install` (the root `prepare` script), so that a program starts
// without tsx transpiling its sources on every start. Plain JavaScript: it
// runs before anything is compiled.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

/**
 * Builds `<packageDir>dist/<name>.js` from `entry`, with a chunk per
 * dynamically imported part (so that what a program imports only when it
 * needs it, like the Kubernetes client, is not loaded at its start), and
 * `dist/inputs.json` (the sources it was built from, relative to dist/,
 * outside node_modules), in a fresh folder renamed into place, so a program
 * starting at the same time never reads half a bundle. Bare imports for
 * which `external(path)` answers true stay imports, loaded from
 * node_modules at run time. Returns esbuild's metafile.
 */
export async function bundleForNode({ packageDir, entry, name, external = () => false }) {
  const { build } = await import("esbuild");
  const dist = `${packageDir}dist/`;
  const staging = `${packageDir}dist.${process.pid}.${Date.now()}.tmp/`;
  mkdirSync(staging, { recursive: true });
  try {
    const result = await build({
      absWorkingDir: packageDir,
      entryPoints: { [name]: entry },
      outdir: staging,
      bundle: true,
      splitting: true,
      platform: "node",
      format: "esm",
      target: "node20",
      metafile: true,
      logLevel: "warning",
      plugins: [
        {
          name: "external-packages",
          setup(build) {
            build.onResolve({ filter: /^[^./]/ }, (args) => (external(args.path) ? { path: args.path, external: true } : undefined));
          },
        },
      ],
      // Some bundled CommonJS modules call require() for Node's built-ins.
      banner: { js: 'import { createRequire as __berthRequire } from "node:module"; const require = __berthRequire(import.meta.url);' },
    });
    const inputs = Object.keys(result.metafile.inputs)
      .filter((path) => !path.includes("node_modules/"))
      .map((path) => `../${path}`);
    writeFileSync(`${staging}inputs.json`, `${JSON.stringify(inputs)}\n`);
    rmSync(dist, { recursive: true, force: true });
    try {
      renameSync(staging, dist);
    } catch (error) {
      // Another process bundling at the same time put its dist/ there first.
      if (!bundleIsCurrent(pathToFileURL(dist), name)) throw error;
    }
    return result.metafile;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Whether `<distUrl><name>.js` is newer than every source it was built from. */
function bundleIsCurrent(distUrl, name) {
  try {
    const built = statSync(new URL(`${name}.js`, distUrl)).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL("inputs.json", distUrl), "utf8"));
    return inputs.every((path) => statSync(new URL(path, distUrl)).mtimeMs <= built);
  } catch {
    return false;
  }
}

/**
 * Runs `<distUrl><name>.js`. In a checkout where a source changed since it
 * was built, `rebuild()` first; if that fails (no esbuild, a read-only
 * install) it runs `sourceUrl` through tsx, so it never runs stale code.
 */
export async function runBundle({ distUrl, name, rebuild, sourceUrl }) {
  let bundled = bundleIsCurrent(distUrl, name);
  if (!bundled) {
    try {
      await rebuild();
      bundled = true;
    } catch {}
  }
  if (bundled) {
    await import(new URL(`${name}.js`, distUrl).href);
  } else {
    const { register } = await import("tsx/esm/api");
    register();
    await import(sourceUrl.href);
  }
}
