import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import test from "ava";
import { writeGatewaySecrets } from "../src/gateway/local/secret-database.js";
import { newSharedSecret } from "../src/store/allocation-store.js";
import { testDataDir } from "./support/allocator.js";

const REALM = "berth.localhost";

test("reads like coturn's (one connection, no busy timeout) never fail while the secrets are rewritten", async (t) => {
  const database = join(testDataDir(t), "turndb");
  await writeGatewaySecrets("sqlite3", database, REALM, [newSharedSecret()]);
  // sqlite3 without -cmd '.timeout' has no busy handler, as coturn has none; -bail stops at the first failed read.
  const reader = spawn("sqlite3", ["-bail", database], { stdio: ["pipe", "pipe", "pipe"] });
  let counts = "";
  let errors = "";
  reader.stdout.on("data", (chunk: Buffer) => (counts += chunk.toString()));
  reader.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  const exited = once(reader, "exit");
  const reads = `SELECT count(*) FROM turn_secret WHERE realm = '${REALM}';\n`.repeat(500);
  for (let rewrite = 0; rewrite < 40 && reader.exitCode === null; rewrite++) {
    reader.stdin.write(reads);
    await writeGatewaySecrets("sqlite3", database, REALM, [newSharedSecret(), newSharedSecret()]);
  }
  reader.stdin.end();
  await exited;
  t.is(errors, "");
  const answers = counts.trim().split("\n");
  t.is(answers.length, 40 * 500);
  t.true(
    answers.every((count) => count === "1" || count === "2"),
    "a read saw the table without its secrets",
  );
});
