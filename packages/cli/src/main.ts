import { runCli } from "./run-cli.js";

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("Token: ");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    // A person types one line; a pipe may send more, the first line is the token.
    if (process.stdin.isTTY && Buffer.concat(chunks).includes(10)) break;
  }
  return Buffer.concat(chunks).toString("utf8").split(/\r?\n/)[0] ?? "";
}

const interrupt = new AbortController();
process.once("SIGINT", () => interrupt.abort());
process.exitCode = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin,
  signal: interrupt.signal,
});
