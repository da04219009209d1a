import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Logger } from "@berth/kit";
import type { GatewayEngine, GatewaySpec } from "../gateway-spec.js";
import { writeGatewaySecrets } from "./secret-database.js";
import { renderTurnserverConfig } from "./turnserver-config.js";

/** Options of the local gateway engine. */
export interface LocalGatewayOptions {
  /** Each gateway keeps its config, user database and log in `<directory>/<name>/`. */
  directory: string;
  listenHost: string;
  turnserverPath: string;
  sqlite3Path: string;
  allowedPeerIps: readonly string[];
  restartBackoffMs: number;
  maxRestartBackoffMs: number;
  logger: Logger;
}

interface Gateway {
  spec: GatewaySpec;
  /** The configuration the process runs with: a change means a restart. */
  config: string;
  /** The secrets in its user database: a change means a rewrite, no restart. */
  secrets: string;
  /** The certificate in its files (empty without TLS): a renewal means a rewrite and SIGUSR2, no restart. */
  certificatePem: string;
  child: ChildProcess | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  backoffMs: number;
  startedAt: number;
  stopping: boolean;
}

/** A run this long counts as stable: the next crash restarts without backoff. */
const STABLE_RUN_MS = 10_000;
const READY_TIMEOUT_MS = 10_000;

/** The host's own IPv4 addresses, which no gateway may relay to. */
function platformAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((address) => address !== undefined && address.family === "IPv4" && !address.internal)
    .map((address) => address!.address);
}

/** Resolves once something accepts TCP connections on host:port (coturn listens on TCP and UDP alike). */
async function waitForListener(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (accepted) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** Replaces a file whole: a turnserver reading it meanwhile (a crash restart) sees the old or the new content, never a part. */
async function replaceFile(file: string, content: string): Promise<void> {
  await writeFile(`${file}.new`, content, { mode: 0o600 });
  await rename(`${file}.new`, file);
}

/**
 * Stops a turnserver left running by an earlier allocator process that died
 * without stopping its children, so that its port is free again.
 */
async function stopLeftover(directory: string): Promise<void> {
  const pid = Number((await readFile(join(directory, "turnserver.pid"), "utf8").catch(() => "")).trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) return;
  const command = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
  if (command !== "turnserver") return;
  process.kill(pid, "SIGKILL");
  for (let wait = 0; wait < 50 && (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")) !== ""; wait++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * One real `turnserver` (coturn) process per rtc process, supervised: a
 * crash restarts it with doubling backoff. Secrets live in each gateway's
 * SQLite user database, so a rotation rewrites them in place while the
 * process and its open allocations carry on; a renewed certificate is
 * written over the old one and coturn told to re-read it (SIGUSR2), which
 * keeps the allocations too.
 */
export function createLocalGateways(options: LocalGatewayOptions): GatewayEngine {
  const { logger } = options;
  const gateways = new Map<string, Gateway>();
  const ownAddresses = platformAddresses();
  const directoryOf = (name: string) => join(options.directory, name);
  let leftoversCleared = false;

  /** On the first apply: the directories of an earlier run, with any turnserver still running in them. */
  async function clearLeftovers(wanted: ReadonlySet<string>): Promise<void> {
    const names = await readdir(options.directory).catch(() => [] as string[]);
    for (const name of names) {
      await stopLeftover(directoryOf(name));
      if (!wanted.has(name)) await rm(directoryOf(name), { recursive: true, force: true });
    }
    leftoversCleared = true;
  }

  function start(gateway: Gateway): void {
    const log = logger.child({ gateway: gateway.spec.name, port: gateway.spec.port });
    const child = spawn(options.turnserverPath, ["-c", join(directoryOf(gateway.spec.name), "turnserver.conf")], { stdio: "ignore" });
    gateway.child = child;
    gateway.startedAt = Date.now();
    child.on("error", (error) => log.error("turnserver could not start", { error }));
    child.on("exit", (code, signal) => {
      if (gateway.child !== child) return;
      gateway.child = undefined;
      if (gateway.stopping) return;
      if (Date.now() - gateway.startedAt >= STABLE_RUN_MS) gateway.backoffMs = options.restartBackoffMs;
      log.warn("turnserver exited: restarting", { code, signal, inMs: gateway.backoffMs });
      gateway.restartTimer = setTimeout(() => {
        gateway.restartTimer = undefined;
        if (!gateway.stopping) start(gateway);
      }, gateway.backoffMs);
      gateway.backoffMs = Math.min(gateway.backoffMs * 2, options.maxRestartBackoffMs);
    });
    log.info("turnserver started", { pid: child.pid });
  }

  async function stop(gateway: Gateway): Promise<void> {
    gateway.stopping = true;
    clearTimeout(gateway.restartTimer);
    const child = gateway.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const killTimer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(killTimer);
  }

  async function converge(spec: GatewaySpec): Promise<void> {
    const directory = directoryOf(spec.name);
    const userDatabase = join(directory, "turndb");
    const tls = spec.tls && { certificateFile: join(directory, "tls-certificate.pem"), keyFile: join(directory, "tls-key.pem") };
    const writeCertificate = async () => {
      if (!spec.tls || !tls) return;
      await replaceFile(tls.keyFile, spec.tls.privateKeyPem);
      await replaceFile(tls.certificateFile, spec.tls.certificatePem);
    };
    const config = renderTurnserverConfig(spec, {
      listenHost: options.listenHost,
      userDatabase,
      pidFile: join(directory, "turnserver.pid"),
      logFile: join(directory, "turnserver.log"),
      platformAddresses: ownAddresses,
      allowedPeerIps: options.allowedPeerIps,
      tls,
    });
    const secrets = spec.secrets.join("\n");
    const certificatePem = spec.tls?.certificatePem ?? "";
    let gateway = gateways.get(spec.name);
    if (gateway && gateway.config !== config) {
      await stop(gateway);
      gateways.delete(spec.name);
      gateway = undefined;
    }
    if (gateway && gateway.certificatePem !== certificatePem && !gateway.stopping) {
      await writeCertificate();
      gateway.certificatePem = certificatePem;
      // Between two runs (a crash's backoff) there is nothing to tell: the next run reads the new files.
      gateway.child?.kill("SIGUSR2");
      logger.info("gateway certificate renewed in place", { gateway: spec.name });
    }
    if (gateway && gateway.secrets === secrets && !gateway.stopping) return;
    await mkdir(directory, { recursive: true, mode: 0o700 });
    await writeGatewaySecrets(options.sqlite3Path, userDatabase, spec.realm, spec.secrets);
    if (gateway) {
      gateway.secrets = secrets;
      logger.info("gateway secrets updated in place", { gateway: spec.name, secrets: spec.secrets.length });
      return;
    }
    await writeCertificate();
    await writeFile(join(directory, "turnserver.conf"), config, { mode: 0o600 });
    const fresh: Gateway = {
      spec,
      config,
      secrets,
      certificatePem,
      child: undefined,
      restartTimer: undefined,
      backoffMs: options.restartBackoffMs,
      startedAt: 0,
      stopping: false,
    };
    gateways.set(spec.name, fresh);
    start(fresh);
    if (!(await waitForListener(options.listenHost, spec.port, READY_TIMEOUT_MS))) {
      logger.warn("gateway is not listening yet", { gateway: spec.name, port: spec.port });
    }
  }

  return {
    async apply(specs) {
      const wanted = new Set(specs.map((spec) => spec.name));
      if (!leftoversCleared) await clearLeftovers(wanted);
      for (const [name, gateway] of gateways) {
        if (wanted.has(name)) continue;
        await stop(gateway);
        gateways.delete(name);
        // Forgets the secrets with the gateway.
        await rm(directoryOf(name), { recursive: true, force: true });
        logger.info("gateway stopped", { gateway: name });
      }
      for (const spec of specs) await converge(spec);
    },
    async close() {
      await Promise.all([...gateways.values()].map(stop));
      gateways.clear();
    },
  };
}
