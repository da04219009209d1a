import { readFileSync, readdirSync, statSync, utimesSync } from "node:fs";
import { fileURLToPath } from "node:url";
import test from "ava";
import { bundle, consoleDir, ensureBundle } from "../scripts/bundle.js";

const web = fileURLToPath(new URL("../web/", import.meta.url));

// The console reaches berth through the generated Connect clients only: no
// other library may ship in the page, and no source may open a request of its own.
const ALLOWED_PACKAGES = ["preact", "@connectrpc/connect", "@connectrpc/connect-web", "@bufbuild/protobuf"];

test.serial("the page holds only its sources, the generated code and Preact, Connect and protobuf-es", async (t) => {
  const metafile = await bundle();
  const packages = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (inModules) packages.add(inModules[1]!);
    else t.true(input.startsWith("web/") || input.startsWith("../proto/gen/"), `a source of the page: ${input}`);
  }
  t.deepEqual(
    [...packages].filter((name) => !ALLOWED_PACKAGES.includes(name)),
    [],
  );
  t.true(packages.has("@connectrpc/connect-web"));
  t.deepEqual(readdirSync(consoleDir).sort(), ["console.css", "console.js", "index.html", "inputs.json"]);
});

test("no console source calls the network but through the generated clients", (t) => {
  for (const name of readdirSync(web)) {
    const source = readFileSync(`${web}${name}`, "utf8");
    for (const call of [/\bfetch\s*\(/, /XMLHttpRequest/, /WebSocket/, /EventSource/, /sendBeacon/, /\bimport\s*\(/]) {
      t.false(call.test(source), `${name} uses ${call.source}`);
    }
  }
  const rpc = readFileSync(`${web}rpc.ts`, "utf8");
  t.regex(rpc, /createConnectTransport\(\{ baseUrl: location\.origin/);
});

test.serial("ensureBundle bundles again when a source is newer than the page, and leaves a current page alone", async (t) => {
  await ensureBundle();
  const built = statSync(`${consoleDir}console.js`).mtimeMs;
  t.is(statSync(`${await ensureBundle()}console.js`).mtimeMs, built, "a current page is served as it is");
  const source = `${web}ui.tsx`;
  const later = new Date(built + 5_000);
  utimesSync(source, later, later);
  t.teardown(() => utimesSync(source, new Date(), new Date()));
  await ensureBundle();
  t.true(statSync(`${consoleDir}console.js`).mtimeMs > built, "the stale page was bundled again");
});
