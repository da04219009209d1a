import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../src/run-cli.js";

export interface Teardown {
  teardown(fn: () => void): void;
}

/** A temporary directory removed when the test ends. */
export function tempDir(t: Teardown, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `berth` in-process with its own config dir; env adds to it. */
export function berthRunner(t: Teardown, baseEnv: Record<string, string>) {
  const configDir = tempDir(t, "berth-cli-config-");
  return async (
    argv: string[],
    options: { env?: Record<string, string>; stdin?: string; signal?: AbortSignal; onStdout?: (text: string) => void; onStderr?: (text: string) => void } = {},
  ) => {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      env: { BERTH_CONFIG_DIR: configDir, ...baseEnv, ...options.env },
      stdout: {
        write: (text: string) => {
          stdout += text;
          options.onStdout?.(text);
        },
      },
      stderr: {
        write: (text: string) => {
          stderr += text;
          options.onStderr?.(text);
        },
      },
      readStdin: async () => options.stdin ?? "",
      signal: options.signal,
    });
    return { code, stdout, stderr, configDir };
  };
}
