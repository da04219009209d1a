import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../..", import.meta.url));
const checkedIn = join(root, "packages/proto/gen");

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

test("the checked-in generated code matches the .proto files (run `npm run generate`)", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "berth-gen-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  await run("npx", ["buf", "generate", "--output", out], { cwd: root });
  const fresh = join(out, "packages/proto/gen");
  const freshFiles = listFiles(fresh)
    .map((f) => relative(fresh, f))
    .sort();
  const committedFiles = listFiles(checkedIn)
    .map((f) => relative(checkedIn, f))
    .sort();
  t.deepEqual(committedFiles, freshFiles, "the set of generated files differs");
  for (const file of freshFiles) {
    t.is(readFileSync(join(checkedIn, file), "utf8"), readFileSync(join(fresh, file), "utf8"), `${file} is stale`);
  }
});
