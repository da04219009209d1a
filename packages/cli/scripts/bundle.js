// Bundles the CLI into dist/berth.js, so that `berth` starts without tsx
// transpiling its sources on every call. The root `prepare` script runs it on
// `npm install` / `npm ci`; bin/berth.js runs it again when a source changed.
import { fileURLToPath } from "node:url";
import { bundleForNode } from "@berth/kit/node-bundle";

/** Builds dist/berth.js with everything it imports; returns esbuild's metafile, for tests that check what the bundle holds. */
export function bundle() {
  return bundleForNode({ packageDir: fileURLToPath(new URL("..", import.meta.url)), entry: "src/main.ts", name: "berth" });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
