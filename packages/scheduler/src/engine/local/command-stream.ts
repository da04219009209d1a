import { spawn } from "node:child_process";
import type { CommandEvent } from "../engine.js";
import { createChunkQueue } from "../chunk-queue.js";
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
  const queue = createChunkQueue<CommandEvent>();
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
  // The exit comes last: after every byte the command wrote before it.
  const finish = () => {
    if (ended === undefined || openPipes > 0) return;
    queue.push(ended);
    queue.end();
  };
  const pipe = (stream: NodeJS.ReadableStream, kind: "stdout" | "stderr") => {
    stream.on("data", (data: Buffer) => {
      queue.push({ kind, data });
      // Back-pressure: the pipe waits while the consumer is behind.
      stream.pause();
      void queue.room().then(() => stream.resume());
    });
    stream.on("end", () => {
      openPipes -= 1;
      finish();
    });
  };
  pipe(child.stdout!, "stdout");
  pipe(child.stderr!, "stderr");
  child.once("error", (error) => {
    ended = { kind: "exit", code: null, reason: `could not start: ${error.message}` };
    openPipes = 0;
    finish();
  });
  child.once("exit", (code, killedBy) => {
    ended = { kind: "exit", code, reason: stopReason || (killedBy === null ? "" : `killed by ${killedBy}`) };
    finish();
    // Something the command left in the background may hold its pipes open: it goes with it.
    setTimeout(() => {
      if (openPipes <= 0) return;
      signalProcessGroup(child.pid!, "SIGKILL");
      child.stdout!.destroy();
      child.stderr!.destroy();
      openPipes = 0;
      finish();
    }, PIPE_LINGER_MS).unref();
  });
  try {
    if (signal.aborted) onAbort();
    yield* queue;
  } finally {
    signal.removeEventListener("abort", onAbort);
    clearTimeout(timer);
    // A consumer that stops reading before the command ended (the caller went away) stops it too.
    if (ended === undefined) {
      stop("stopped: the caller went away");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    clearTimeout(killer);
  }
}
