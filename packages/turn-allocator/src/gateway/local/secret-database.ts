import { spawn } from "node:child_process";

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Makes the `turn_secret` table of a coturn SQLite user database hold exactly
 * `secrets` for `realm`, in one transaction (coturn never sees the table
 * empty). The database is in WAL mode: coturn reads the secrets on every
 * authentication without a busy timeout, and in the default rollback mode a
 * read during a commit fails with "database is locked", which coturn answers
 * with 401, refusing the old and new secret alike; in WAL mode readers never
 * wait for the writer. The SQL goes to `sqlite3` on stdin, so secrets never
 * appear in a command line another user could read.
 */
export async function writeGatewaySecrets(sqlite3Path: string, databaseFile: string, realm: string, secrets: readonly string[]): Promise<void> {
  for (const secret of secrets) {
    // Secrets are made by newSharedSecret; anything else is a bug, and is refused rather than quoted into SQL.
    if (!BASE64URL.test(secret)) throw new Error("a TURN secret must be base64url");
  }
  const sql = [
    "PRAGMA busy_timeout = 5000;",
    "PRAGMA journal_mode = WAL;",
    "CREATE TABLE IF NOT EXISTS turn_secret (realm varchar(127) default '', value varchar(256), primary key (realm, value));",
    "BEGIN IMMEDIATE;",
    `DELETE FROM turn_secret WHERE realm = ${sqlString(realm)};`,
    ...secrets.map((secret) => `INSERT INTO turn_secret (realm, value) VALUES (${sqlString(realm)}, ${sqlString(secret)});`),
    "COMMIT;",
  ].join("\n");
  await new Promise<void>((resolve, reject) => {
    const child = spawn(sqlite3Path, ["-bail", databaseFile], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`sqlite3 could not write the gateway's secrets (exit ${code}): ${stderr.trim()}`))));
    child.stdin.end(sql);
  });
}
