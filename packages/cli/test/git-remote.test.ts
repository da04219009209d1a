import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { runCli } from "../src/run-cli.js";
import { ExitCode } from "../src/exit-codes.js";

// git:remote works on the repository of the current directory: this file's one test changes it.

async function berth(argv: string[], env: Record<string, string>, stdin = "") {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    env,
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    readStdin: async () => stdin,
  });
  return { code, stdout, stderr };
}

test("git:remote adds or updates the app's remote with berth as its credential helper; git:credential answers with the token", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "berth-git-remote-"));
  const configDir = mkdtempSync(join(tmpdir(), "berth-cli-config-"));
  const home = process.cwd();
  t.teardown(() => {
    process.chdir(home);
    rmSync(dir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });
  const env = { BERTH_CONFIG_DIR: configDir, BERTH_API_URL: "http://127.0.0.1:8080" };
  process.chdir(dir);

  const outside = await berth(["git:remote", "--app", "shop"], env);
  t.is(outside.code, ExitCode.failed);
  t.regex(outside.stderr, /not a git repository/);

  execFileSync("git", ["init", "--quiet"], { cwd: dir });
  const added = await berth(["git:remote", "--app", "shop"], env);
  t.is(added.code, ExitCode.ok, added.stderr);
  t.is(added.stdout, "set git remote berth to http://127.0.0.1:8080/git/shop.git\n");
  const config = (key: string) => execFileSync("git", ["config", "--get-all", key], { cwd: dir, encoding: "utf8" }).trim();
  t.is(config("remote.berth.url"), "http://127.0.0.1:8080/git/shop.git");
  t.is(config("credential.http://127.0.0.1:8080/git/shop.git.helper"), "!berth git:credential");

  // Again, against another API: the remote moves, and the helper is not added twice.
  const moved = await berth(["git:remote", "--app", "shop", "--remote", "berth"], { ...env, BERTH_API_URL: "https://api.example.com/" });
  t.is(moved.code, ExitCode.ok, moved.stderr);
  t.is(config("remote.berth.url"), "https://api.example.com/git/shop.git");
  t.is(config("credential.https://api.example.com/git/shop.git.helper"), "!berth git:credential");
  const other = await berth(["git:remote", "--app", "shop", "--remote", "production"], env);
  t.is(other.code, ExitCode.ok, other.stderr);
  t.is(config("remote.production.url"), "http://127.0.0.1:8080/git/shop.git");

  const request = "protocol=http\nhost=127.0.0.1:8080\npath=git/shop.git\n\n";
  const answer = await berth(["git:credential", "get"], { ...env, BERTH_TOKEN: "berth_team-token" }, request);
  t.is(answer.stdout, "username=berth\npassword=berth_team-token\n");
  t.is((await berth(["git:credential", "store"], { ...env, BERTH_TOKEN: "berth_team-token" }, request)).stdout, "");
  const loggedOut = await berth(["git:credential", "get"], env, request);
  t.is(loggedOut.code, ExitCode.auth);
});
