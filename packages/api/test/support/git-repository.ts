import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** What a git command did. */
export interface GitOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A git working copy in a fresh directory, driven with the real `git` client. */
export interface GitRepository {
  readonly dir: string;
  /** Runs git in the repository; never throws on a non-zero exit. */
  git(...args: string[]): Promise<GitOutcome>;
  /** Runs a shell command line in the repository, with the same environment as git. */
  shell(command: string): Promise<GitOutcome>;
  /** Writes files (path -> content), stages everything and commits; resolves with the new commit id. */
  commit(files: Record<string, string>, message: string): Promise<string>;
}

/**
 * Creates an empty repository on branch main. Git runs with no user or system
 * configuration and no terminal prompts, so a refused credential fails at once.
 */
export async function createGitRepository(t: Teardown, extraEnv: Record<string, string> = {}): Promise<GitRepository> {
  const dir = mkdtempSync(join(tmpdir(), "berth-git-work-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "Test",
    GIT_AUTHOR_EMAIL: "test@example.com",
    GIT_COMMITTER_NAME: "Test",
    GIT_COMMITTER_EMAIL: "test@example.com",
    ...extraEnv,
  };
  const run = (file: string, args: string[]) =>
    new Promise<GitOutcome>((resolve, reject) => {
      const child = spawn(file, args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
  const git = (...args: string[]) => run("git", args);
  const must = async (...args: string[]) => {
    const outcome = await git(...args);
    if (outcome.code !== 0) throw new Error(`git ${args.join(" ")} failed: ${outcome.stderr}`);
    return outcome.stdout;
  };
  await must("init", "--quiet", "--initial-branch=main");
  return {
    dir,
    git,
    shell: (command) => run("/bin/sh", ["-c", command]),
    async commit(files, message) {
      for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
      await must("add", "--all");
      await must("commit", "--quiet", "--message", message);
      return (await must("rev-parse", "HEAD")).trim();
    },
  };
}

/**
 * The files of a Node app (no Procfile, so `npm start` serves it) whose build
 * script makes built.txt, served through its one dependency: a local package
 * (`file:vendor/greeting`), so that `npm ci` installs something without a
 * registry. The vendored package and the lockfile are written into the
 * repository's directory on first use; the returned files are to commit.
 */
export function nodeAppFiles(repo: GitRepository, build: string, message: string): Record<string, string> {
  const manifest = JSON.stringify({
    name: "shop",
    version: "1.0.0",
    scripts: { build, start: "node server.js" },
    dependencies: { greeting: "file:vendor/greeting" },
  });
  if (!existsSync(join(repo.dir, "package-lock.json"))) {
    mkdirSync(join(repo.dir, "vendor", "greeting"), { recursive: true });
    writeFileSync(join(repo.dir, "vendor", "greeting", "package.json"), JSON.stringify({ name: "greeting", version: "1.0.0", main: "index.js" }));
    writeFileSync(join(repo.dir, "vendor", "greeting", "index.js"), 'module.exports = (text) => "hello " + text;\n');
    writeFileSync(join(repo.dir, "package.json"), manifest);
    execFileSync("npm", ["install", "--package-lock-only", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: repo.dir, stdio: "ignore" });
  }
  return {
    "package.json": manifest,
    "server.js": `const http = require("node:http");
const body = require("greeting")(require("node:fs").readFileSync("built.txt", "utf8"));
http.createServer((request, response) => response.end(body)).listen(Number(process.env.PORT), process.env.HOST);
`,
    "message.txt": message,
  };
}
