import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import test from "ava";

test("a second SIGTERM or SIGINT during shutdown does not cut it short", async (t) => {
  const child = spawn(process.execPath, ["--import", "tsx", resolve(import.meta.dirname, "fixtures/slow-stop.ts")], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const ready = new Promise<void>((done) =>
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.startsWith("ready\n")) done();
    }),
  );
  await ready;
  child.kill("SIGTERM");
  await new Promise((done) => setTimeout(done, 50));
  child.kill("SIGTERM");
  child.kill("SIGINT");
  const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
  t.is(signal, null);
  t.is(code, 0);
  t.is(output, "ready\nclosed\n");
});
