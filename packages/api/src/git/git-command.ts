import { spawn } from "node:child_process";

/**
 * The environment every git process of the API runs with: no user or system
 * configuration (the API's behaviour must not depend on the host's
 * ~/.gitconfig), plus `config` as command-line settings.
 */
export function gitEnvironment(config: Record<string, string> = {}, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
  };
  const entries = Object.entries(config);
  env.GIT_CONFIG_COUNT = String(entries.length);
  entries.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return { ...env, ...extra };
}

/** A git command that failed: its arguments and what it printed on stderr. */
export class GitCommandError extends Error {
  override name = "GitCommandError";
}

/** Runs git to its end; resolves with its standard output, rejects with GitCommandError when it exits non-zero. */
export function runGit(args: string[], env: Record<string, string>, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { env, stdio: ["ignore", "pipe", "pipe"], signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new GitCommandError(`git ${args[0]} failed (exit ${code}): ${Buffer.concat(err).toString("utf8").trim()}`));
    });
  });
}
