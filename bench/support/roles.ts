/**
 * A benchmark's parties each in their own process: the bench file runs
 * itself with a role name, and the role tells the load generator over IPC
 * that it is ready (with its URL and whatever else it has to say).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";

export type Ready = Record<string, string>;

/** Options of startRole. */
export interface RoleOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Node flags before the script, e.g. --cpu-prof. */
  nodeFlags?: string[];
}

/** Runs `script` (the bench file itself) as `role` and resolves with what the role sent when ready. */
export function startRole(script: string, role: string, args: string[] = [], options: RoleOptions = {}): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), "--import", "tsx", script, role, ...args], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, ...options.env },
  });
  return new Promise((resolve, reject) => {
    child.once("message", (ready) => resolve({ child, ready: ready as Ready }));
    child.once("exit", (code) => reject(new Error(`${role} exited with ${code} before it was ready`)));
  });
}

/** Stops a role with SIGTERM and resolves once it has exited. */
export function stopRole(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  return exited;
}
