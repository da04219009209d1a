import { spawn } from "node:child_process";
import type { CommandEvent } from "../engine.js";
import { signalProcessGroup } from "./process-table.js";

/** How long a command's pipes may stay open after it exited (a background child holding them). */
const PIPE_LINGER_MS = 1000;

/** How a command line runs: its argv, working directory and environment. */
export interface CommandLine {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

/** How long a streamed command may run, and how it is stopped. */
export interface StreamLimits {
  /** The command is stopped after this long (SIGTERM, then SIGKILL). */
  timeoutMs: number;
  /** Between SIGTERM and SIGKILL. */
  graceMs: number;
}

/**
 * Runs `line` in a process group of its own and yields what it prints, as it
 * prints it, then how it ended. Aborting `signal` or running past the
 * timeout stops the whole group: SIGTERM, SIGKILL after the grace period.
 * The output is not buffered beyond what the consumer has not read yet: a
 * slow consumer pauses the command's pipes rather than growing memory.
 */
export async function* streamCommand(line: CommandLine, limits: StreamLimits, signal: AbortSignal): AsyncGenerator<CommandEvent> {
  const child = spawn(line.argv[0]!, line.argv.slice(1), { cwd: line.cwd, env: line.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const pending: CommandEvent[] = [];
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  let stopReason = "";
  let killer: NodeJS.Timeout | undefined;
  const stop = (reason: string) => {
    if (stopReason !== "" || child.pid === undefined) return;
    stopReason = reason;
    signalProcessGroup(child.pid, "SIGTERM");
    killer = setTimeout(() => signalProcessGroup(child.pid!, "SIGKILL"), limits.graceMs);
  };
  const onAbort = () => stop("stopped: the caller went away");
  signal.addEventListener("abort", onAbort);
  const timer = setTimeout(() => stop(`timed out after ${Math.round(limits.timeoutMs / 1000)} s`), limits.timeoutMs);
  let ended: CommandEvent | undefined;
  let openPipes = 2;
  const pipe = (stream: NodeJS.ReadableStream, kind: "stdout" | "stderr") => {
    stream.on("data", (data: Buffer) => {
      pending.push({ kind, data });
      // Back-pressure: the pipe resumes once the consumer has taken what is pending.
      if (pending.length > 64) stream.pause();
      notify();
    });
    stream.on("end", () => {
      openPipes -= 1;
      notify();
    });
  };
  pipe(child.stdout!, "stdout");
  pipe(child.stderr!, "stderr");
  child.once("error", (error) => {
    ended = { kind: "exit", code: null, reason: `could not start: ${error.message}` };
    openPipes = 0;
    notify();
  });
  child.once("exit", (code, killedBy) => {
    ended = { kind: "exit", code, reason: stopReason || (killedBy === null ? "" : `killed by ${killedBy}`) };
    notify();
    // Something the command left in the background may hold its pipes open: it goes with it.
    setTimeout(() => {
      if (openPipes <= 0) return;
      signalProcessGroup(child.pid!, "SIGKILL");
      child.stdout!.destroy();
      child.stderr!.destroy();
      openPipes = 0;
      notify();
    }, PIPE_LINGER_MS).unref();
  });
  try {
    if (signal.aborted) onAbort();
    for (;;) {
      while (pending.length > 0) {
        yield pending.shift()!;
        if (pending.length === 0) {
          child.stdout!.resume();
          child.stderr!.resume();
        }
      }
      // The exit comes last: after every byte the command wrote before it.
      if (ended !== undefined && openPipes <= 0) {
        yield ended;
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    clearTimeout(timer);
    // A consumer that stops reading early (the caller went away) stops the command too.
    if (ended === undefined) stop("stopped: the caller went away");
    if (ended === undefined) await new Promise((resolve) => child.once("exit", resolve));
    clearTimeout(killer);
  }
}
