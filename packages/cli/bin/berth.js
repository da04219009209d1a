#!/usr/bin/env node
// `berth`: runs dist/berth.js, the bundle `npm install` builds (scripts/bundle.js),
// bundling again first where a source changed since (see runBundle).
import { runBundle } from "@berth/kit/node-bundle";

await runBundle({
  distUrl: new URL("../dist/", import.meta.url),
  name: "berth",
  rebuild: async () => (await import("../scripts/bundle.js")).bundle(),
  sourceUrl: new URL("../src/main.ts", import.meta.url),
});
