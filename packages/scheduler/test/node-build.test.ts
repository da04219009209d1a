import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { createBuildCache } from "../src/build/build-cache.js";
import { nodeBuildCommand, nodeBuildOf } from "../src/build/node-source.js";

function source(t: { teardown(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-node-build-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const manifest = (scripts: Record<string, string>) => JSON.stringify({ name: "shop", scripts });

const cases: [string, Record<string, string>, { build: boolean } | undefined][] = [
  ["no package.json", { "web.js": "" }, undefined],
  ["package.json without a lockfile", { "package.json": manifest({}) }, undefined],
  ["a yarn lockfile only (npm ci cannot install from it)", { "package.json": manifest({}), "yarn.lock": "" }, undefined],
  ["package-lock.json, no build script", { "package.json": manifest({ start: "node ." }), "package-lock.json": "{}" }, { build: false }],
  ["npm-shrinkwrap.json and a build script", { "package.json": manifest({ build: "tsc" }), "npm-shrinkwrap.json": "{}" }, { build: true }],
  ["a blank build script", { "package.json": manifest({ build: " " }), "package-lock.json": "{}" }, { build: false }],
  ["a package.json that is not JSON (npm's error will say why)", { "package.json": "{", "package-lock.json": "{}" }, { build: false }],
];
for (const [title, files, expected] of cases) {
  test(`build of a source: ${title}`, async (t) => {
    const build = await nodeBuildOf(source(t, files));
    t.deepEqual(build === undefined ? undefined : { build: build.hasBuildScript }, expected);
  });
}

test("the build command installs unless the cache restored node_modules, then runs the build script", (t) => {
  const build = { lockfileSha256: "x", hasBuildScript: true };
  t.is(nodeBuildCommand(build, false), 'set -e\necho "> npm ci --omit=dev"; npm ci --omit=dev\necho "> npm run build"; npm run build');
  t.is(nodeBuildCommand(build, true), 'set -e\necho "> npm run build"; npm run build');
  t.is(nodeBuildCommand({ ...build, hasBuildScript: false }, true), undefined);
});

test("the build cache restores node_modules only for the lockfile they were installed from, and forgets an app", async (t) => {
  const cacheDir = mkdtempSync(join(tmpdir(), "berth-build-cache-"));
  t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
  const cache = createBuildCache(cacheDir);
  const built = source(t, { "node_modules/dep/index.js": "module.exports = 1;\n" });
  const fresh = source(t, {});
  t.false(await cache.restore("shop", "lock-a", fresh));
  await cache.save("shop", "lock-a", built);
  t.false(await cache.restore("shop", "lock-b", fresh));
  t.false(existsSync(join(fresh, "node_modules")));
  t.true(await cache.restore("shop", "lock-a", fresh));
  t.is(readFileSync(join(fresh, "node_modules", "dep", "index.js"), "utf8"), "module.exports = 1;\n");
  t.false(await cache.restore("other", "lock-a", source(t, {})));
  await cache.forget("shop");
  t.false(await cache.restore("shop", "lock-a", source(t, {})));
});
