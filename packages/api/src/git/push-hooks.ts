import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "@berth/kit";

/** One ref a push updates, as git's pre-receive hook reads it. */
export interface RefUpdate {
  oldId: string;
  newId: string;
  ref: string;
}

/** A push being received: who pushes to which app's repository. */
export interface Push {
  team: string;
  tokenId: string;
  app: string;
  repository: string;
}

/** What the pre-receive hook hands over: the updates and where the pushed objects wait (git's quarantine). */
export interface HookRequest {
  updates: RefUpdate[];
  /** GIT_OBJECT_DIRECTORY and GIT_ALTERNATE_OBJECT_DIRECTORIES of the hook: the pushed objects are readable only through them. */
  objectEnvironment: Record<string, string>;
}

/**
 * Decides a push: prints its progress with `say` (each line reaches `git
 * push` as a "remote:" line) and resolves with the hook's exit code; non-zero
 * refuses the push. `signal` aborts when the pusher went away.
 */
export type PushHandler = (push: Push, request: HookRequest, say: (line: string) => void, signal: AbortSignal) => Promise<number>;

/** The pre-receive hook of every app repository, relaying each push to the API process that serves it. */
export interface PushHooks {
  /** The directory to give git as core.hooksPath. */
  readonly hooksDirectory: string;
  /** Registers a push; its environment goes to the git process that receives it, so that the hook finds it again. */
  open(push: Push): { env: Record<string, string>; close(): void };
  close(): Promise<void>;
}

/** How the hook says the API's verdict: a line no output line can be (it starts with a NUL). */
const EXIT_LINE = "\u0000exit ";

/**
 * The hook itself: it sends the updates and the quarantine's location to the
 * API over a private Unix socket, prints every line that comes back and exits
 * with the code of the last. Plain CommonJS, so it runs without a build step.
 */
const HOOK_SCRIPT = `"use strict";
const net = require("node:net");
const input = [];
process.stdin.on("data", (chunk) => input.push(chunk));
process.stdin.on("end", () => {
  let code = 1;
  let pending = "";
  const socket = net.connect(process.env.BERTH_PUSH_SOCKET);
  socket.setEncoding("utf8");
  socket.on("connect", () => {
    socket.write(JSON.stringify({
      push: process.env.BERTH_PUSH_ID,
      updates: Buffer.concat(input).toString("utf8"),
      objectDirectory: process.env.GIT_OBJECT_DIRECTORY || "",
      alternates: process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES || "",
    }) + "\\n");
  });
  socket.on("data", (data) => {
    pending += data;
    for (let end = pending.indexOf("\\n"); end >= 0; end = pending.indexOf("\\n")) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line.startsWith(${JSON.stringify(EXIT_LINE)})) code = Number(line.slice(${EXIT_LINE.length}));
      else process.stdout.write(line + "\\n");
    }
  });
  socket.on("error", (error) => process.stdout.write("berth: lost the platform during the push: " + error.message + "\\n"));
  socket.on("close", () => process.exit(code));
});
`;

function parseUpdates(text: string): RefUpdate[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [oldId = "", newId = "", ref = ""] = line.split(" ");
      return { oldId, newId, ref };
    });
}

/** Starts the relay: a Unix socket in a private directory (mode 0700) beside the hook scripts. */
export async function startPushHooks(handler: PushHandler, logger: Logger): Promise<PushHooks> {
  const directory = await mkdtemp(join(tmpdir(), "berth-git-"));
  const hooksDirectory = join(directory, "hooks");
  const socketPath = join(directory, "push.sock");
  await writeFile(join(directory, "pre-receive.cjs"), HOOK_SCRIPT);
  await mkdir(hooksDirectory);
  const hook = join(hooksDirectory, "pre-receive");
  await writeFile(hook, `#!/bin/sh\nexec '${process.execPath}' '${join(directory, "pre-receive.cjs")}'\n`);
  await chmod(hook, 0o755);

  const pushes = new Map<string, Push>();
  const connections = new Set<Socket>();

  async function serve(socket: Socket, line: string): Promise<void> {
    const gone = new AbortController();
    socket.on("close", () => gone.abort());
    const say = (text: string) => {
      if (!socket.destroyed) socket.write(`${text.replace(/\0/g, "")}\n`);
    };
    let code = 1;
    try {
      const request = JSON.parse(line) as { push: string; updates: string; objectDirectory: string; alternates: string };
      const push = pushes.get(request.push);
      if (push === undefined) {
        say("berth: this push is not known to the API that received it");
      } else {
        const objectEnvironment: Record<string, string> = {};
        if (request.objectDirectory) objectEnvironment.GIT_OBJECT_DIRECTORY = request.objectDirectory;
        if (request.alternates) objectEnvironment.GIT_ALTERNATE_OBJECT_DIRECTORIES = request.alternates;
        code = await handler(push, { updates: parseUpdates(request.updates), objectEnvironment }, say, gone.signal);
      }
    } catch (error) {
      logger.error("a push failed in the API", { error });
      say(`berth: the push failed in the platform: ${(error as Error).message}`);
    }
    if (!socket.destroyed) socket.end(`${EXIT_LINE}${code}\n`);
  }

  const server = createServer((socket) => {
    connections.add(socket);
    socket.on("close", () => connections.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setEncoding("utf8");
    let buffered = "";
    const onData = (data: string) => {
      buffered += data;
      const end = buffered.indexOf("\n");
      if (end < 0) return;
      socket.off("data", onData);
      void serve(socket, buffered.slice(0, end));
    };
    socket.on("data", onData);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });

  return {
    hooksDirectory,
    open(push) {
      const id = randomBytes(16).toString("hex");
      pushes.set(id, push);
      return { env: { BERTH_PUSH_SOCKET: socketPath, BERTH_PUSH_ID: id }, close: () => pushes.delete(id) };
    },
    async close() {
      for (const socket of connections) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(directory, { recursive: true, force: true });
    },
  };
}
