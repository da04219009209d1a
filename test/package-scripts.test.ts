import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { DEFAULT_PORTS } from "@berth/kit";

const packages = fileURLToPath(new URL("../packages", import.meta.url));

test("every service starts alone with npm start -w packages/<service>", (t) => {
  for (const service of Object.keys(DEFAULT_PORTS)) {
    const manifest = JSON.parse(readFileSync(join(packages, service, "package.json"), "utf8")) as { scripts?: Record<string, string> };
    t.is(manifest.scripts?.start, "tsx src/main.ts", service);
  }
});
