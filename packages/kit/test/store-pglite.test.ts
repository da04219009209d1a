import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import test from "ava";
import type { ExecutionContext } from "ava";
import { Code } from "@connectrpc/connect";
import { openDatabase } from "@berth/kit";
import type { Database, Migration } from "@berth/kit";
import { rejection } from "./support/rejection.js";

// PGlite's start-up blocks the event loop for seconds and holds ~100 MB: one at a time.
const serial = test.serial;

const storeModule = new URL("../src/store/index.ts", import.meta.url).href;
const createItems: Migration = { id: 1, name: "items", sql: "CREATE TABLE items (id integer PRIMARY KEY)" };

async function dataDirectory(t: ExecutionContext): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "berth-pglite-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

async function open(t: ExecutionContext, dataDir: string): Promise<Database> {
  const database = await openDatabase({ service: "svc", schema: "svc", migrations: [createItems], dataDir });
  t.teardown(() => database.close());
  return database;
}

/** Runs `body` in a child Node process that has `openDatabase` and `dataDir` in scope. */
function spawnStoreProcess(t: ExecutionContext, dataDir: string, body: string): ChildProcess {
  const script = `
    const { openDatabase } = await import(${JSON.stringify(storeModule)});
    const dataDir = ${JSON.stringify(dataDir)};
    const migrations = ${JSON.stringify([createItems])};
    ${body}
  `;
  const child = spawn(process.execPath, ["--import=tsx", "--input-type=module", "--eval", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return child;
}

serial("a first start creates the service's data directory and removes its lock on close", async (t) => {
  const dataDir = await dataDirectory(t);
  const database = await open(t, dataDir);
  t.is(database.backend, "pglite");
  t.true(existsSync(join(dataDir, "svc", "PG_VERSION")));
  t.is((await readFile(join(dataDir, "svc.lock"), "utf8")).trim(), String(process.pid));
  await database.close();
  t.deepEqual((await readdir(dataDir)).sort(), ["svc"]);
});

serial("a data directory is opened once per process", async (t) => {
  const dataDir = await dataDirectory(t);
  const first = await open(t, dataDir);
  const error = await rejection(open(t, dataDir), Code.FailedPrecondition);
  t.regex(error.message, /svc\.lock is already held by this process/);
  await first.query("INSERT INTO items (id) VALUES (1)");
  await first.close();

  const second = await open(t, dataDir);
  t.deepEqual((await second.query("SELECT id FROM items")).rows, [{ id: 1 }]);
});

serial("a lock left with this process id by an earlier life of the container is taken over", async (t) => {
  const dataDir = await dataDirectory(t);
  await writeFile(join(dataDir, "svc.lock"), `${process.pid}\n`);
  const database = await open(t, dataDir);
  await database.query("INSERT INTO items (id) VALUES (1)");
  await database.close();
  t.deepEqual(await readdir(dataDir), ["svc"]);
});

serial("a directory that holds files but no database is refused and left alone", async (t) => {
  const dataDir = await dataDirectory(t);
  await mkdir(join(dataDir, "svc"));
  await writeFile(join(dataDir, "svc", "notes.txt"), "mine");
  const error = await rejection(open(t, dataDir), Code.FailedPrecondition);
  t.regex(error.message, /is not empty and holds no database/);
  t.is(await readFile(join(dataDir, "svc", "notes.txt"), "utf8"), "mine");
  t.deepEqual(await readdir(dataDir), ["svc"]);
});

serial("every write acknowledged before a SIGKILL is there after a restart", async (t) => {
  const dataDir = await dataDirectory(t);
  const child = spawnStoreProcess(
    t,
    dataDir,
    `const database = await openDatabase({ service: "svc", schema: "svc", migrations, dataDir });
     for (let id = 1; ; id++) {
       await database.query("INSERT INTO items (id) VALUES ($1)", [id]);
       process.stdout.write(id + "\\n");
     }`,
  );
  const exited = once(child, "exit");
  const acknowledged: number[] = [];
  const enoughWrites = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      acknowledged.push(Number(line));
      if (acknowledged.length === 25) resolve();
    });
    void exited.then(([code, signal]) => reject(new Error(`writer exited early: ${code ?? signal}`)));
  });
  await enoughWrites;

  // While the writer runs, its directory is locked against another process.
  const refused = await rejection(open(t, dataDir), Code.FailedPrecondition);
  t.regex(refused.message, new RegExp(`held by running process ${child.pid}`));

  child.kill("SIGKILL");
  const [, signal] = await exited;
  t.is(signal, "SIGKILL");

  const database = await open(t, dataDir);
  const { rows } = await database.query<{ id: number }>("SELECT id FROM items ORDER BY id");
  const stored = rows.map((row) => row.id);
  t.deepEqual(stored.slice(0, acknowledged.length), acknowledged);
  // At most the write in flight at the kill committed without being acknowledged.
  t.true(stored.length <= acknowledged.length + 1);
});

serial("a first start killed while initdb writes its files does not block the next start", async (t) => {
  const dataDir = await dataDirectory(t);
  // The child kills itself at its first file write after initdb created PG_VERSION, the
  // moment at which a directory initialised in place could never be opened again.
  const child = spawnStoreProcess(
    t,
    dataDir,
    `const { createRequire, syncBuiltinESMExports } = await import("node:module");
     const fs = createRequire(import.meta.url)("node:fs");
     const writeSync = fs.writeSync;
     fs.writeSync = (...args) => {
       if (fs.existsSync(dataDir + "/svc.initializing/PG_VERSION")) process.kill(process.pid, "SIGKILL");
       return writeSync(...args);
     };
     syncBuiltinESMExports();
     await openDatabase({ service: "svc", schema: "svc", migrations, dataDir });
     process.exit(0);`,
  );
  const [, signal] = await once(child, "exit");
  t.is(signal, "SIGKILL", "the child was killed during initdb");
  t.true(existsSync(join(dataDir, "svc.initializing", "PG_VERSION")));

  const database = await open(t, dataDir);
  await database.query("INSERT INTO items (id) VALUES (7)");
  t.deepEqual((await database.query("SELECT id FROM items")).rows, [{ id: 7 }]);
  t.false(existsSync(join(dataDir, "svc.initializing")));
});
