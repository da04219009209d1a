import { createHmac, randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { IceServerSchema, TurnCredentialsSchema } from "@berth/proto/type/v1/network";
import type { TurnCredentials } from "@berth/proto/type/v1/network";

/** Where a gateway is reached and the secret its credentials are signed with. */
export interface MintingTarget {
  turnHostname: string;
  port: number;
  secret: string;
}

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

/**
 * Ephemeral credentials as an RTCConfiguration's `iceServers`, shaped like
 * Cloudflare's generate-ice-servers: a STUN entry without credentials, then
 * one TURN entry over UDP and TCP carrying `<expiry-unix>:<user>` and its
 * password. A browser passes the list to RTCPeerConnection as is.
 */
export function mintTurnCredentials(target: MintingTarget, user: string, ttlSeconds: number, nowMs: number): TurnCredentials {
  const expiresAtSeconds = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAtSeconds}:${user}`;
  const address = `${target.turnHostname}:${target.port}`;
  return create(TurnCredentialsSchema, {
    iceServers: [
      create(IceServerSchema, { urls: [`stun:${address}`] }),
      create(IceServerSchema, {
        urls: [`turn:${address}?transport=udp`, `turn:${address}?transport=tcp`],
        username,
        credential: turnPassword(target.secret, username),
      }),
    ],
    expiresAt: timestampFromMs(expiresAtSeconds * 1000),
    ttlSeconds,
  });
}
