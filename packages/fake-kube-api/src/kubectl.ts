import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FakeKubeApi } from "./server.js";

/** What one kubectl run printed and how it exited. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** kubectl (v1.32 on these machines) pointed at a fake cluster, as an independent client in tests. */
export interface Kubectl {
  /** Runs `kubectl <args>`, with `input` on stdin when given. */
  run(args: string[], input?: string): Promise<KubectlResult>;
  /** The environment that points kubectl at the fake cluster (KUBECONFIG, its own cache), for spawning it directly. */
  env: NodeJS.ProcessEnv;
  /** Removes the kubeconfig and kubectl's cache. */
  dispose(): void;
}

/** Writes a kubeconfig for `api` into a fresh directory (with kubectl's discovery cache) and runs kubectl against it. */
export function kubectlFor(api: FakeKubeApi): Kubectl {
  const directory = mkdtempSync(join(tmpdir(), "kubectl-"));
  const kubeconfig = join(directory, "kubeconfig");
  writeFileSync(kubeconfig, api.kubeConfig().exportConfig());
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(directory, "cache"), HOME: directory };
  return {
    env,
    run: (args, input) =>
      new Promise((resolve) => {
        const child = execFile("kubectl", args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
        if (input !== undefined) child.stdin!.end(input);
      }),
    dispose: () => rmSync(directory, { recursive: true, force: true }),
  };
}
