import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { failedPrecondition } from "../errors.js";
import type { StoreLogger } from "./database.js";
import { lockDataDirectory } from "./data-directory-lock.js";

/** A running embedded PostgreSQL (PGlite) reachable over the wire protocol on loopback. */
export interface EmbeddedPostgres {
  readonly host: string;
  readonly port: number;
  /** Stops serving and shuts the database down cleanly. Close client connections first. */
  stop(): Promise<void>;
}

const host = "127.0.0.1";

// PGlite has one backend: its socket server interleaves the protocol messages
// of concurrent connections and mixes up their statements and portals, so
// exactly one client may talk to it. The second slot only lets a replacement
// connection in while the server is still tearing down the one it replaces.
const maxConnections = 2;

/**
 * Starts PGlite on `directory` (created, and initialised on first start) and
 * serves it on an ephemeral loopback port. The directory is locked against a
 * second opener until `stop()`.
 */
export async function startEmbeddedPostgres(directory: string, logger?: StoreLogger): Promise<EmbeddedPostgres> {
  await mkdir(dirname(directory), { recursive: true });
  const unlock = await lockDataDirectory(`${directory}.lock`);
  try {
    const startedAt = performance.now();
    const created = await initializeDataDirectory(directory);
    const db = await PGlite.create(directory);
    const server = new PGLiteSocketServer({ db, host, port: 0, maxConnections });
    try {
      await server.start();
    } catch (error) {
      await db.close();
      throw error;
    }
    const port = Number(server.getServerConn().split(":").at(-1));
    logger?.info("embedded postgres started", {
      directory,
      port,
      created,
      milliseconds: Math.round(performance.now() - startedAt),
    });
    return {
      host,
      port,
      async stop() {
        await server.stop();
        await db.close();
        await unlock();
      },
    };
  } catch (error) {
    await unlock();
    throw error;
  }
}

/**
 * Runs initdb in a side directory and moves it into place only once it is
 * complete: initdb creates PG_VERSION before it has written the rest, PGlite
 * takes any directory holding PG_VERSION for a database, and so a first start
 * killed at that moment would leave a directory that never opens again.
 * Returns whether it created the database.
 */
async function initializeDataDirectory(directory: string): Promise<boolean> {
  const entries = await readdir(directory).catch((error: NodeJS.ErrnoException): string[] => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  if (entries.includes("PG_VERSION")) return false;
  if (entries.length > 0) {
    throw failedPrecondition(`${directory} is not empty and holds no database (no PG_VERSION)`);
  }
  const staging = `${directory}.initializing`;
  await rm(staging, { recursive: true, force: true });
  const db = await PGlite.create(staging);
  await db.close();
  // rename(2) also replaces an empty directory standing in its place.
  await rename(staging, directory);
  return true;
}
