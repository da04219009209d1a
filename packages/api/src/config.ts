import { ConfigError, envInt, envOptional, peerUrl, readCommonConfig } from "@berth/kit";
import type { CommonConfig, Environment } from "@berth/kit";

/** Everything the public API needs to start. */
export interface ApiConfig extends CommonConfig {
  /** The internal services the API composes. */
  peers: {
    scheduler: string;
    router: string;
    turnAllocator: string;
    netpol: string;
  };
  /**
   * An operator-chosen admin bearer token (BERTH_ADMIN_TOKEN); without it a
   * fresh install generates one and prints it once.
   */
  adminToken: string | undefined;
  /** Browser origins allowed to call the API (Connect-Web, gRPC-Web); ["*"] allows any. */
  corsOrigins: string[];
  /** Deadline of a call to an internal service when the client set none. */
  callTimeoutMs: number;
}

const MIN_ADMIN_TOKEN_LENGTH = 20;

/** Reads the API's configuration from the environment; throws ConfigError naming the variable at fault. */
export function readApiConfig(env: Environment): ApiConfig {
  const adminToken = envOptional(env, "BERTH_ADMIN_TOKEN");
  if (adminToken !== undefined && (adminToken.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(adminToken))) {
    throw new ConfigError(`BERTH_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters without spaces`);
  }
  return {
    ...readCommonConfig(env, "api"),
    peers: {
      scheduler: peerUrl(env, "scheduler"),
      router: peerUrl(env, "router"),
      turnAllocator: peerUrl(env, "turn-allocator"),
      netpol: peerUrl(env, "netpol"),
    },
    adminToken,
    corsOrigins: corsOrigins(envOptional(env, "BERTH_API_CORS_ORIGINS") ?? "*"),
    callTimeoutMs: envInt(env, "BERTH_API_CALL_TIMEOUT_MS", 10_000, { min: 100, max: 600_000 }),
  };
}

function corsOrigins(raw: string): string[] {
  const origins = raw
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  for (const origin of origins) {
    if (origin === "*") continue;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError(`BERTH_API_CORS_ORIGINS must list "*" or origins like https://console.example.com, got "${origin}"`);
    }
    if (url.origin !== origin) {
      throw new ConfigError(`BERTH_API_CORS_ORIGINS entries must be bare origins (scheme://host[:port]), got "${origin}"`);
    }
  }
  return origins;
}
