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
