import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Command } from "../command.js";
import { resolveApiUrl, resolveCredentials } from "../credentials.js";
import { CliFailure } from "../exit-codes.js";

const run = promisify(execFile);

/** Runs git in the current directory; a failure is a CliFailure with git's own words. */
async function git(...args: string[]): Promise<string> {
  try {
    return (await run("git", args)).stdout;
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim();
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new CliFailure("git is not installed (or not on PATH)");
    throw new CliFailure(stderr || (error as Error).message);
  }
}

/** git:remote, and git:credential (the credential helper git:remote sets up). */
export const gitCommands: Command[] = [
  {
    name: "git:remote",
    summary: "add the app's git remote to the repository in the current directory; git push <remote> main deploys",
    usage: "--app <app> [--remote <name>]",
    app: true,
    positionals: { min: 0, max: 0 },
    options: { remote: { type: "string", placeholder: "<name>", description: 'the remote\'s name (default "berth")' } },
    details: [
      "The remote is <api>/git/<app>.git. Git gets the token from `berth git:credential`, set as the remote's",
      "credential helper, so the token is never written into the repository (berth must be on PATH).",
      "A push to main or master builds and deploys that commit and prints the rollout; a failed build,",
      "release phase or rollout makes git push fail.",
    ],
    async run({ args, out, env, app }) {
      const name = app();
      const remote = (args.options.remote as string | undefined) ?? "berth";
      const url = new URL(`git/${name}.git`, `${(await resolveApiUrl(env)).replace(/\/+$/, "")}/`).toString();
      await git("rev-parse", "--git-dir");
      const remotes = (await git("remote")).split("\n");
      if (remotes.includes(remote)) await git("remote", "set-url", remote, url);
      else await git("remote", "add", remote, url);
      await git("config", "--replace-all", `credential.${url}.helper`, "!berth git:credential");
      if (args.json) out.json({ remote, url });
      else out.line(`set git remote ${remote} to ${url}`);
    },
  },
  {
    name: "git:credential",
    summary: "the git credential helper of berth remotes: answers git with the logged-in token",
    usage: "<get|store|erase>",
    positionals: { min: 1, max: 1 },
    details: ["Git runs it; it reads git's request on stdin and, for get, prints the token as the password."],
    async run({ args, out, env, readStdin }) {
      await readStdin();
      // Git asks helpers to store or erase what worked or failed; the token belongs to berth login, not to git.
      if (args.positionals[0] !== "get") return;
      const { token } = await resolveCredentials(env);
      out.line(`username=berth\npassword=${token}`);
    },
  },
];
