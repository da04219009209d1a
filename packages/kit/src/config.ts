import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./server.js";

/** The environment, as main.ts passes it in (never read process.env below main). */
export type Environment = Record<string, string | undefined>;

/** A configuration value is missing or malformed; the message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A string variable, or its default; throws naming the variable when required and unset. */
export function envString(env: Environment, name: string, fallback?: string): string {
  const value = env[name];
  if (value !== undefined && value !== "") return value;
  if (fallback === undefined) throw new ConfigError(`${name} is required`);
  return fallback;
}

/** An optional string variable: undefined when unset or empty. */
export function envOptional(env: Environment, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

/** An integer variable within [min, max], or its default. */
export function envInt(env: Environment, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const raw = envOptional(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (range.min !== undefined && value < range.min) throw new ConfigError(`${name} must be at least ${range.min}, got ${value}`);
  if (range.max !== undefined && value > range.max) throw new ConfigError(`${name} must be at most ${range.max}, got ${value}`);
  return value;
}

/** A boolean variable ("true"/"false"/"1"/"0"), or its default. */
export function envBool(env: Environment, name: string, fallback: boolean): boolean {
  const raw = envOptional(env, name);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** An http(s) URL variable, or its default; the trailing slash is dropped. */
export function envUrl(env: Environment, name: string, fallback?: string): string {
  const raw = envString(env, name, fallback);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  return raw.replace(/\/+$/, "");
}

/** One of a fixed set of values, or its default. */
export function envChoice<T extends string>(env: Environment, name: string, choices: readonly T[], fallback: T): T {
  const raw = envOptional(env, name) ?? fallback;
  if (!(choices as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${choices.join(", ")}, got "${raw}"`);
  return raw as T;
}

/** Settings every berth service shares. */
export interface CommonConfig {
  host: string;
  port: number;
  /** Postgres URL; unset means the embedded PostgreSQL cluster under dataDir. */
  databaseUrl: string | undefined;
  /** Redis URL; unset means in-process coordination. */
  redisUrl: string | undefined;
  dataDir: string;
  internalToken: string;
  platformDomain: string;
  logLevel: "debug" | "info" | "warn" | "error";
  /** The largest request message the service reads (BERTH_MAX_MESSAGE_BYTES). */
  maxMessageBytes: number;
}

/** Default port of each service on 127.0.0.1. */
export const DEFAULT_PORTS = {
  api: 8080,
  scheduler: 8081,
  router: 8082,
  "turn-allocator": 8083,
  netpol: 8084,
} as const;

/** The services of the platform, by package name. */
export type ServiceName = keyof typeof DEFAULT_PORTS;

/** The environment variable naming a service's own port or a peer's URL: BERTH_TURN_ALLOCATOR_PORT. */
export function serviceVariable(service: ServiceName, suffix: "PORT" | "URL"): string {
  return `BERTH_${service.toUpperCase().replace(/-/g, "_")}_${suffix}`;
}

/** The URL of a peer service: BERTH_<SERVICE>_URL, or its default port on 127.0.0.1. */
export function peerUrl(env: Environment, service: ServiceName): string {
  return envUrl(env, serviceVariable(service, "URL"), `http://127.0.0.1:${DEFAULT_PORTS[service]}`);
}

/**
 * The internal credential: BERTH_INTERNAL_TOKEN, or one generated once and
 * kept in the data directory so that services started separately on one
 * machine agree on it without setup.
 */
export function internalTokenFor(env: Environment, dataDir: string): string {
  const configured = envOptional(env, "BERTH_INTERNAL_TOKEN");
  if (configured !== undefined) {
    if (configured.length < 16) throw new ConfigError("BERTH_INTERNAL_TOKEN must be at least 16 characters");
    return configured;
  }
  const file = join(dataDir, "internal-token");
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    mkdirSync(dataDir, { recursive: true });
    const token = randomBytes(32).toString("base64url");
    // "wx" fails if another service wrote it first; then read theirs.
    try {
      writeFileSync(file, token, { flag: "wx", mode: 0o600 });
      return token;
    } catch {
      return readFileSync(file, "utf8").trim();
    }
  }
}

/** Reads the settings every service shares; throws ConfigError naming the variable at fault. */
export function readCommonConfig(env: Environment, service: ServiceName): CommonConfig {
  const dataDir = resolve(envString(env, "BERTH_DATA_DIR", ".berth"));
  return {
    host: envString(env, "BERTH_HOST", "127.0.0.1"),
    port: envInt(env, serviceVariable(service, "PORT"), DEFAULT_PORTS[service], { min: 0, max: 65535 }),
    databaseUrl: envOptional(env, "DATABASE_URL"),
    redisUrl: envOptional(env, "REDIS_URL"),
    dataDir,
    internalToken: internalTokenFor(env, dataDir),
    platformDomain: envString(env, "BERTH_PLATFORM_DOMAIN", "berth.localhost"),
    logLevel: envChoice(env, "BERTH_LOG_LEVEL", ["debug", "info", "warn", "error"] as const, "info"),
    // At least 1 MiB: source upload chunks are that large.
    maxMessageBytes: envInt(env, "BERTH_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, { min: 1024 * 1024, max: 1024 * 1024 * 1024 }),
  };
}

const SECRET_KEYS = /token|secret|password|key/i;

/** A copy of a configuration fit for logging: secrets and URL passwords masked. */
export function maskedConfig(config: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === "string" && SECRET_KEYS.test(key)) out[key] = "***";
    else if (typeof value === "string" && /^[a-z]+:\/\/[^/]*:[^/]*@/.test(value)) out[key] = value.replace(/:\/\/([^:/]*):[^@]*@/, "://$1:***@");
    else out[key] = value;
  }
  return out;
}

/** Where the services' workloads run: one machine, or a Kubernetes cluster. */
export type EngineKind = "local" | "kubernetes";

/**
 * What every service's kubernetes engine must agree on so that their objects
 * meet: the scheduler's Services are what the router's Ingresses point at.
 */
export interface KubernetesTarget {
  namespace: string;
  /** The port of each web process's Service. */
  webServicePort: number;
  kubeconfigPath: string | undefined;
}

/** BERTH_ENGINE: one engine for the whole platform, read the same way by every service. */
export function readEngine(env: Environment): EngineKind {
  return envChoice(env, "BERTH_ENGINE", ["local", "kubernetes"] as const, "local");
}

/** BERTH_KUBERNETES_NAMESPACE, BERTH_KUBERNETES_SERVICE_PORT and KUBECONFIG. */
export function readKubernetesTarget(env: Environment): KubernetesTarget {
  return {
    namespace: envString(env, "BERTH_KUBERNETES_NAMESPACE", "berth-apps"),
    webServicePort: envInt(env, "BERTH_KUBERNETES_SERVICE_PORT", 80, { min: 1, max: 65535 }),
    kubeconfigPath: envOptional(env, "KUBECONFIG"),
  };
}
