import test from "ava";
import { create } from "@bufbuild/protobuf";
import { ProcessFormationSchema } from "@berth/proto/type/v1/process";
import { printFormation } from "../src/formation-table.js";
import { createOutput } from "../src/output.js";

function printed(isolation: string): { stdout: string; stderr: string } {
  let stdout = "";
  let stderr = "";
  const out = createOutput({ stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
  printFormation(out, [create(ProcessFormationSchema, { processType: "web", replicas: 1, readyReplicas: 1, size: "standard-1x", isolation })]);
  return { stdout, stderr };
}

test("pods says isolation: none when replicas run as plain processes, and nothing more when they run in containers", (t) => {
  t.regex(printed("none").stderr, /^isolation: none \(replicas run as plain processes/);
  t.is(printed("container").stderr, "");
  t.regex(printed("container").stdout, /^TYPE\s+REPLICAS/);
});

test("pods has an isolation column: runc for containers, none for plain processes", (t) => {
  const [header, row] = printed("container").stdout.trim().split("\n");
  t.regex(header!, /\bISOLATION$/);
  t.regex(row!, /\brunc$/);
  t.regex(printed("none").stdout.trim().split("\n")[1]!, /\bnone$/);
});
