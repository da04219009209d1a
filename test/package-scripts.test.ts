import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { DEFAULT_PORTS } from "@berth/kit";
import { bundle } from "../packages/platform/scripts/bundle.js";

const packages = fileURLToPath(new URL("../packages", import.meta.url));

const startScript = (manifestPath: string) => (JSON.parse(readFileSync(manifestPath, "utf8")) as { scripts?: Record<string, string> }).scripts?.start;

// node itself runs main.ts (tsx only as a loader): the tsx CLI relays SIGTERM and, when the
// child does not confirm it within 30 ms, sends it again and then SIGKILL, cutting a graceful stop short.
test("every service starts alone with npm start -w packages/<service>, under node, not the tsx CLI; npm start runs the platform's bundle", (t) => {
  for (const service of Object.keys(DEFAULT_PORTS)) t.is(startScript(join(packages, service, "package.json")), "node --import tsx src/main.ts", service);
  t.is(startScript(join(packages, "..", "package.json")), "node packages/platform/bin/start.js");
});

test("the platform's bundle holds every berth service and loads the Kubernetes client only when an engine asks for it", async (t) => {
  const metafile = await bundle();
  const outputs = metafile.outputs;
  const entry = Object.keys(outputs).find((path) => outputs[path]!.entryPoint === "src/main.ts")!;
  t.regex(entry, /platform\.js$/);
  // What the entry loads at start: its static imports, and theirs (shared chunks), transitively.
  const loaded = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const output = outputs[pending.pop()!];
    for (const imported of output?.imports ?? []) {
      if (imported.kind !== "import-statement" || loaded.has(imported.path)) continue;
      loaded.add(imported.path);
      if (!imported.external) pending.push(imported.path);
    }
  }
  t.false(loaded.has("@kubernetes/client-node"), "the client costs about 80 MB: only the kubernetes engines load it");
  t.true(
    Object.values(outputs).some((output) => output.imports.some((imported) => imported.path === "@kubernetes/client-node")),
    "the kubernetes engines are in the bundle, in chunks of their own",
  );
  const sources = Object.keys(metafile.inputs);
  for (const service of Object.keys(DEFAULT_PORTS))
    t.true(
      sources.some((path) => path.includes(`${service}/src/`)),
      service,
    );
  t.false(
    sources.some((path) => path.includes("node_modules/")),
    "packages from node_modules are loaded as they are",
  );
});
