import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import test from "ava";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { DEFAULT_HEALTH, resolveHealth } from "../src/health-settings.js";

const DEMO = resolve(import.meta.dirname, "../../../examples/demo");

test("the demo's README names the health probe the scheduler uses by default", async (t) => {
  const { path } = resolveHealth(RoutingClass.WEB, {}, DEFAULT_HEALTH);
  const readme = await readFile(resolve(DEMO, "README.md"), "utf8");
  t.true(readme.includes(`\`${path}\` is the default health probe`));
  t.false(/`\/health` for the probe/.test(readme), "no other path is called the probe");
});
