// The embedded PostgreSQL cluster's life: created once per data directory,
// shared by the services and processes that use it, stopped by the last one,
// and safe against kills at any moment.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import test from "ava";
import type { ExecutionContext } from "ava";
import { Code } from "@connectrpc/connect";
import { openDatabase } from "@berth/kit";
import type { Database, Migration, StoreLogger } from "@berth/kit";
import { rejection } from "./support/rejection.js";

const storeModule = new URL("../src/store/index.ts", import.meta.url).href;
const createItems: Migration = { id: 1, name: "items", sql: "CREATE TABLE items (id integer PRIMARY KEY)" };

async function dataDirectory(t: ExecutionContext): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "berth-embedded-"));
  t.teardown(async () => {
    await stopLeftoverServer(directory);
    await rm(directory, { recursive: true, force: true });
  });
  return directory;
}

/** A test that failed half-way may leave a server running: end it before removing its files. */
async function stopLeftoverServer(dataDir: string): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid === undefined) return;
  try {
    process.kill(pid, "SIGQUIT");
  } catch {
    return;
  }
  for (let i = 0; i < 100 && running(pid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    return Number((await readFile(join(dataDir, "postgres", "postmaster.pid"), "utf8")).split("\n")[0]);
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs (a zombie, exited but not yet reaped by init, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function open(t: ExecutionContext, dataDir: string, service = "svc", logger?: StoreLogger): Promise<Database> {
  const database = await openDatabase({ service, schema: service.replace(/-/g, "_"), migrations: [createItems], dataDir, logger });
  t.teardown(() => database.close());
  return database;
}

/**
 * Runs `body` in a child Node process that has `openDatabase`, `dataDir` and
 * `migrations` in scope, in a process group of its own so that a test can
 * kill it together with any program it runs.
 */
function spawnStoreProcess(t: ExecutionContext, dataDir: string, body: string): ChildProcess {
  const script = `
    const { openDatabase } = await import(${JSON.stringify(storeModule)});
    const dataDir = ${JSON.stringify(dataDir)};
    const migrations = ${JSON.stringify([createItems])};
    ${body}
  `;
  const child = spawn(process.execPath, ["--import=tsx", "--input-type=module", "--eval", script], {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
  });
  return child;
}

function lines(child: ChildProcess): AsyncIterator<string> {
  return createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

test.serial("a first start creates one cluster with a private password, each service in its own schema; the last close stops it", async (t) => {
  const dataDir = await dataDirectory(t);
  const [api, router] = await Promise.all([open(t, dataDir, "api"), open(t, dataDir, "router")]);
  t.true(existsSync(join(dataDir, "postgres", "PG_VERSION")));
  t.false(existsSync(join(dataDir, "api")), "no directory per service any more");
  t.is((await stat(join(dataDir, "postgres-password"))).mode & 0o777, 0o600);
  t.is((await readFile(join(dataDir, "api.lock"), "utf8")).trim(), String(process.pid));

  await api.query("INSERT INTO items (id) VALUES (1)");
  t.deepEqual((await router.query("SELECT count(*)::int AS n FROM items")).rows, [{ n: 0 }]);
  const { rows } = await api.query("SELECT inet_server_addr()::text AS address, current_setting('port') AS port");
  t.is(rows[0].address, "127.0.0.1/32");

  const pid = (await postmasterPid(dataDir))!;
  await api.close();
  t.true(running(pid), "the cluster stays up while the router uses it");
  t.false(existsSync(join(dataDir, "api.lock")));
  await router.close();
  t.false(running(pid), "the last close stopped the cluster");
  t.false(existsSync(join(dataDir, "postgres", "postmaster.pid")));

  const again = await open(t, dataDir, "api");
  t.deepEqual((await again.query("SELECT id FROM items")).rows, [{ id: 1 }]);
});

test.serial("a service runs once per data directory: a second opener is refused, naming the holder", async (t) => {
  const dataDir = await dataDirectory(t);
  const first = await open(t, dataDir);
  const here = await rejection(open(t, dataDir), Code.FailedPrecondition);
  t.regex(here.message, /the svc service already runs on the data directory .* \(this process; lock .*svc\.lock\)/);

  const child = spawnStoreProcess(t, dataDir, `await openDatabase({ service: "svc", schema: "svc", migrations, dataDir });`);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = await once(child, "exit");
  t.is(code, 1);
  t.regex(stderr, new RegExp(`the svc service already runs on the data directory ${dataDir} \\(process ${process.pid}; lock`));
  await first.query("INSERT INTO items (id) VALUES (1)");
  t.deepEqual((await first.query("SELECT id FROM items")).rows, [{ id: 1 }]);
});

test.serial("a service started in another process finds the running cluster, and keeps it up after this process closes", async (t) => {
  const dataDir = await dataDirectory(t);
  const here = await open(t, dataDir, "api");
  const pid = (await postmasterPid(dataDir))!;
  const child = spawnStoreProcess(
    t,
    dataDir,
    `const database = await openDatabase({ service: "scheduler", schema: "scheduler", migrations, dataDir });
     process.stdout.write("open\\n");
     for await (const line of (await import("node:readline")).createInterface({ input: process.stdin })) {
       const { rows } = await database.query("SELECT count(*)::int AS n FROM items");
       process.stdout.write(rows[0].n + "\\n");
       if (line === "close") break;
     }
     await database.close();
     process.stdout.write("closed\\n");`,
  );
  const output = lines(child);
  t.is((await output.next()).value, "open");
  t.is(await postmasterPid(dataDir), pid, "the second process started no cluster of its own");

  await here.close();
  t.true(running(pid), "left running for the other process");
  child.stdin!.write("query\n");
  t.is((await output.next()).value, "0");
  child.stdin!.end("close\n");
  t.is((await output.next()).value, "0");
  t.is((await output.next()).value, "closed");
  await once(child, "exit");
  t.false(running(pid), "the last process to close stopped the cluster");
});

test.serial("after a SIGKILL of the process and of the postmaster, every acknowledged write is there", async (t) => {
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
  const postmaster = (await postmasterPid(dataDir))!;
  child.kill("SIGKILL");
  process.kill(postmaster, "SIGKILL");
  await exited;
  t.true(existsSync(join(dataDir, "postgres", "postmaster.pid")), "the killed server left its postmaster.pid");

  const database = await open(t, dataDir);
  const { rows } = await database.query<{ id: number }>("SELECT id FROM items ORDER BY id");
  const stored = rows.map((row) => row.id);
  t.deepEqual(stored.slice(0, acknowledged.length), acknowledged);
  // At most the writes in flight at the kill committed without being acknowledged.
  t.true(stored.length <= acknowledged.length + 2);
  t.not(await postmasterPid(dataDir), postmaster);
});

test.serial("a postmaster.pid naming a process that is not PostgreSQL does not stop the start", async (t) => {
  const dataDir = await dataDirectory(t);
  await (await open(t, dataDir)).close();
  // As after a reboot, when the recorded id now belongs to some other program (here: this test).
  await writeFile(join(dataDir, "postgres", "postmaster.pid"), `${process.pid}\n${join(dataDir, "postgres")}\n0\n5432\n\n127.0.0.1\n0 0\nready\n`);
  const database = await open(t, dataDir);
  t.deepEqual((await database.query("SELECT count(*)::int AS n FROM items")).rows, [{ n: 0 }]);
});

test.serial("a first start killed during initdb leaves no cluster in place, and the next start makes a whole one", async (t) => {
  const dataDir = await dataDirectory(t);
  const child = spawnStoreProcess(t, dataDir, `await openDatabase({ service: "svc", schema: "svc", migrations, dataDir });`);
  const staging = join(dataDir, "postgres.initializing");
  // initdb writes PG_VERSION first and the rest of the cluster after it.
  while (!existsSync(join(staging, "PG_VERSION"))) {
    if (child.exitCode !== null) t.fail("the first start ended before it could be killed");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  process.kill(-child.pid!, "SIGKILL");
  await once(child, "exit");
  t.false(existsSync(join(dataDir, "postgres", "PG_VERSION")), "the half-made cluster was never moved into place");

  const database = await open(t, dataDir);
  await database.query("INSERT INTO items (id) VALUES (7)");
  t.deepEqual((await database.query("SELECT id FROM items")).rows, [{ id: 7 }]);
  t.false(existsSync(staging));
});

test.serial("a cluster directory that holds files but no cluster is refused and left alone", async (t) => {
  const dataDir = await dataDirectory(t);
  await mkdir(join(dataDir, "postgres"));
  await writeFile(join(dataDir, "postgres", "notes.txt"), "mine");
  const error = await rejection(open(t, dataDir), Code.FailedPrecondition);
  t.regex(error.message, /postgres is not empty and holds no PostgreSQL cluster/);
  t.is(await readFile(join(dataDir, "postgres", "notes.txt"), "utf8"), "mine");
  t.false(existsSync(join(dataDir, "svc.lock")));
});

test.serial("a PGlite database of an earlier berth is reported as not read, and left untouched", async (t) => {
  const dataDir = await dataDirectory(t);
  await mkdir(join(dataDir, "svc"));
  await writeFile(join(dataDir, "svc", "PG_VERSION"), "17\n");
  const warnings: string[] = [];
  const logger: StoreLogger = { info: () => {}, warn: (message) => warnings.push(message) };
  await open(t, dataDir, "svc", logger);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /holds a PGlite database from an earlier berth, which is NOT read/);
  t.regex(warnings[0]!, new RegExp(`mv ${dataDir} ${dataDir}\\.pglite`));
  t.is(await readFile(join(dataDir, "svc", "PG_VERSION"), "utf8"), "17\n");
});

test.serial("a lock left with this process id by an earlier life of the container is taken over", async (t) => {
  const dataDir = await dataDirectory(t);
  await writeFile(join(dataDir, "svc.lock"), `${process.pid}\n`);
  const database = await open(t, dataDir);
  await database.query("INSERT INTO items (id) VALUES (1)");
  await database.close();
  t.false(existsSync(join(dataDir, "svc.lock")));
});
