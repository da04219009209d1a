// Bundles `npm start` (src/main.ts with every berth service) into
// dist/platform.js, so that the platform runs as plain JavaScript under node:
// no tsx loader thread, no esbuild service, no source maps kept in memory, no
// transpiling at each start. The root `prepare` script runs it on
// `npm install` / `npm ci`; bin/start.js runs it again when a source changed.
import { fileURLToPath } from "node:url";
import { bundleForNode } from "@berth/kit/node-bundle";

/**
 * The berth packages (TypeScript) are bundled; every other package, and the
 * console (plain JavaScript that finds its files next to itself), is loaded
 * from node_modules as it is.
 */
const external = (path) => !path.startsWith("@berth/") || path === "@berth/console" || path.startsWith("@berth/console/");

/** Builds dist/platform.js; returns esbuild's metafile. */
export function bundle() {
  return bundleForNode({ packageDir: fileURLToPath(new URL("..", import.meta.url)), entry: "src/main.ts", name: "platform", external });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
