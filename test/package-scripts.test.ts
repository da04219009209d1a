import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { DEFAULT_PORTS } from "@berth/kit";

const packages = fileURLToPath(new URL("../packages", import.meta.url));

const startScript = (manifestPath: string) => (JSON.parse(readFileSync(manifestPath, "utf8")) as { scripts?: Record<string, string> }).scripts?.start;

// node itself runs main.ts (tsx only as a loader): the tsx CLI relays SIGTERM and, when the
// child does not confirm it within 30 ms, sends it again and then SIGKILL, cutting a graceful stop short.
test("every service starts alone with npm start -w packages/<service>, under node, not the tsx CLI", (t) => {
  for (const service of Object.keys(DEFAULT_PORTS)) t.is(startScript(join(packages, service, "package.json")), "node --import tsx src/main.ts", service);
  t.is(startScript(join(packages, "..", "package.json")), "node --import tsx packages/platform/src/main.ts");
});
