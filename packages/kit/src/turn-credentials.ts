import { createHmac, randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { IceServerSchema, TurnCredentialsSchema } from "@berth/proto/type/v1/network";
import type { TurnCredentials } from "@berth/proto/type/v1/network";
import type { RateLimits } from "./coordination/index.js";
import { resourceExhausted } from "./errors.js";

/** Where a gateway is reached and the secret its credentials are signed with. */
export interface MintingTarget {
  turnHostname: string;
  port: number;
  secret: string;
  /** The gateway accepts TLS on its port with a certificate for `turnHostname`. */
  tls?: boolean;
}

/** The bounds the TURN allocator's configuration puts on minting. */
export interface MintingPolicy {
  defaultTtlSeconds: number;
  minTtlSeconds: number;
  maxTtlSeconds: number;
  /** Per app, over every process and every minting service (the rate limit is shared through coordination). */
  mintsPerMinute: number;
}

/** A minting request as both minting services take it. */
export interface MintRequest {
  app: string;
  user: string;
  /** 0 means the policy's default. */
  ttlSeconds: number;
}

const TURN_USER = /^[A-Za-z0-9._@+-]{1,128}$/;
const MINUTE_MS = 60_000;

/**
 * The TURN REST API password of a username: base64 HMAC-SHA1 keyed by the
 * shared secret, which is what coturn's `use-auth-secret` recomputes.
 */
export function turnPassword(secret: string, username: string): string {
  return createHmac("sha1", secret).update(username).digest("base64");
}

/** A random user id for credentials minted without one. */
export function anonymousUser(): string {
  return `anon-${randomBytes(6).toString("hex")}`;
}

/** Why `user` cannot be the user part of a TURN username (`<expiry>:<user>`), or undefined. Empty means anonymous. */
export function turnUserProblem(user: string): string | undefined {
  return user === "" || TURN_USER.test(user) ? undefined : "must be 1-128 letters, digits and . _ @ + - (no ':')";
}

/** Why `ttlSeconds` is outside the policy, or undefined (0 takes the default). */
export function turnTtlProblem(ttlSeconds: number, policy: MintingPolicy): string | undefined {
  if (ttlSeconds === 0 || (ttlSeconds >= policy.minTtlSeconds && ttlSeconds <= policy.maxTtlSeconds)) return undefined;
  return `must be between ${policy.minTtlSeconds} and ${policy.maxTtlSeconds}, got ${ttlSeconds}`;
}

/**
 * Ephemeral credentials as an RTCConfiguration's `iceServers`, shaped like
 * Cloudflare's generate-ice-servers: a STUN entry without credentials, then
 * one TURN entry over UDP and TCP (and TLS, `turns:`, when the gateway has
 * a certificate) carrying `<expiry-unix>:<user>` and its password. A browser
 * passes the list to RTCPeerConnection as is.
 */
export function mintTurnCredentials(target: MintingTarget, user: string, ttlSeconds: number, nowMs: number): TurnCredentials {
  const expiresAtSeconds = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAtSeconds}:${user}`;
  const address = `${target.turnHostname}:${target.port}`;
  return create(TurnCredentialsSchema, {
    iceServers: [
      create(IceServerSchema, { urls: [`stun:${address}`] }),
      create(IceServerSchema, {
        urls: [`turn:${address}?transport=udp`, `turn:${address}?transport=tcp`, ...(target.tls ? [`turns:${address}?transport=tcp`] : [])],
        username,
        credential: turnPassword(target.secret, username),
      }),
    ],
    expiresAt: timestampFromMs(expiresAtSeconds * 1000),
    ttlSeconds,
  });
}

/**
 * Mints for a request already checked (user, TTL), after taking one from the
 * app's rate limit: RESOURCE_EXHAUSTED, with when to retry, once the app has
 * minted `mintsPerMinute` in the last minute. The TURN allocator and the API
 * (which mints from the secrets it follows) both mint through this, on one
 * shared limit.
 */
export async function mintWithinLimit(
  rateLimits: RateLimits,
  policy: MintingPolicy,
  target: MintingTarget,
  request: MintRequest,
  nowMs: number,
): Promise<TurnCredentials> {
  const decision = await rateLimits.take(`turn-mint:${request.app}`, policy.mintsPerMinute, MINUTE_MS);
  if (!decision.allowed) {
    throw resourceExhausted(
      `app ${request.app} may mint ${policy.mintsPerMinute} TURN credentials per minute: retry in ${Math.ceil(decision.retryAfterMs / 1000)} s`,
    );
  }
  const user = request.user === "" ? anonymousUser() : request.user;
  return mintTurnCredentials(target, user, request.ttlSeconds === 0 ? policy.defaultTtlSeconds : request.ttlSeconds, nowMs);
}
