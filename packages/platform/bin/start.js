// `npm start`: runs dist/platform.js, the bundle `npm install` builds (scripts/bundle.js),
// bundling again first where a source changed since (see runBundle).
import { runBundle } from "@berth/kit/node-bundle";

await runBundle({
  distUrl: new URL("../dist/", import.meta.url),
  name: "platform",
  rebuild: async () => (await import("../scripts/bundle.js")).bundle(),
  sourceUrl: new URL("../src/main.ts", import.meta.url),
});
