#!/usr/bin/env node
// `berth`: runs dist/berth.js, the bundle `npm install` builds (scripts/bundle.js).
// In a checkout where a source of the bundle changed since, it bundles again
// first; if it cannot (no esbuild, a read-only install) it runs the sources
// through tsx, so it never runs stale code.
import { readFileSync, statSync } from "node:fs";

const dist = new URL("../dist/", import.meta.url);

function bundleIsCurrent() {
  try {
    const built = statSync(new URL("berth.js", dist)).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL("inputs.json", dist), "utf8"));
    return inputs.every((path) => statSync(new URL(path, dist)).mtimeMs <= built);
  } catch {
    return false;
  }
}

let bundled = bundleIsCurrent();
if (!bundled) {
  try {
    await (await import("../scripts/bundle.js")).bundle();
    bundled = true;
  } catch {}
}
if (bundled) {
  await import("../dist/berth.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/main.ts");
}
