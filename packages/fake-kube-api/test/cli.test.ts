import test from "ava";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));

test("npm run fake-cluster writes a kubeconfig that kubectl uses, prints it, and stops on SIGTERM", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "fake-cluster-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const kubeconfig = join(directory, "kubeconfig");
  const child = spawn("npm", ["run", "--silent", "fake-cluster", "--", "--kubeconfig", kubeconfig], { cwd: root, detached: true });
  t.teardown(() => {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  });
  let printed = "";
  child.stdout.on("data", (chunk) => (printed += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  while (!printed.includes("current-context")) await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(printed.trim(), readFileSync(kubeconfig, "utf8").trim());
  const nodes = await new Promise<string>((resolve, reject) =>
    execFile(
      "kubectl",
      ["get", "nodes", "-o", "name"],
      { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(directory, "cache") } },
      (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout)),
    ),
  );
  t.is(nodes, "node/node-a\nnode/node-b\nnode/node-c\n");
  process.kill(-child.pid!, "SIGTERM");
  await exited;
});
