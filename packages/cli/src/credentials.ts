import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Environment } from "./command.js";
import { CliFailure, ExitCode } from "./exit-codes.js";

/** Where the API is and which token to present. */
export interface Credentials {
  apiUrl: string;
  token: string;
}

/** The API a fresh machine talks to: the all-in-one platform on this host. */
export const DEFAULT_API_URL = "http://127.0.0.1:8080";

/** The file `login` writes: $BERTH_CONFIG_DIR, else $XDG_CONFIG_HOME/berth, else ~/.config/berth. */
export function credentialsFile(env: Environment): string {
  const dir = env.BERTH_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), ".config"), "berth");
  return join(dir, "credentials.json");
}

async function readSaved(file: string): Promise<Partial<Credentials>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  try {
    const saved = JSON.parse(text) as Partial<Credentials>;
    return { apiUrl: typeof saved.apiUrl === "string" ? saved.apiUrl : undefined, token: typeof saved.token === "string" ? saved.token : undefined };
  } catch {
    throw new CliFailure(`${file} is not valid JSON; run berth login again`);
  }
}

/**
 * The API URL and token to use: BERTH_API_URL and BERTH_TOKEN when set, over
 * what `login` saved. Without any token the user must log in first.
 */
export async function resolveCredentials(env: Environment): Promise<Credentials> {
  const saved = await readSaved(credentialsFile(env));
  const apiUrl = env.BERTH_API_URL || saved.apiUrl || DEFAULT_API_URL;
  const token = env.BERTH_TOKEN || saved.token;
  if (!token) throw new CliFailure("not logged in: run berth login, or set BERTH_TOKEN", ExitCode.auth);
  return { apiUrl, token };
}

/** The API URL alone (for `login`, before there is a token). */
export async function resolveApiUrl(env: Environment): Promise<string> {
  return env.BERTH_API_URL || (await readSaved(credentialsFile(env))).apiUrl || DEFAULT_API_URL;
}

/** Saves credentials readable by the user only. */
export async function saveCredentials(env: Environment, credentials: Credentials): Promise<string> {
  const file = credentialsFile(env);
  await mkdir(join(file, ".."), { recursive: true, mode: 0o700 });
  await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** Forgets saved credentials. */
export async function removeCredentials(env: Environment): Promise<string> {
  const file = credentialsFile(env);
  await rm(file, { force: true });
  return file;
}
