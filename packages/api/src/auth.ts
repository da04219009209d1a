import { createContextKey } from "@connectrpc/connect";
import type { HandlerContext } from "@connectrpc/connect";
import { bearerToken, permissionDenied, unauthenticated } from "@berth/kit";
import type { CallGuard, Logger } from "@berth/kit";
import type { TokenRow, TokensStore } from "./store/index.js";
import { bearerMatches, tokenIdOf } from "./token-secrets.js";

/** Who is calling: the presented token and its team (admin tokens have none). */
export interface Caller {
  tokenId: string;
  team: string | undefined;
  admin: boolean;
}

/** The authenticated caller of the current RPC, set by the auth interceptor. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "berth caller" });

/** Resolves bearer strings to callers. */
export interface Authenticator {
  /** The caller a bearer string stands for, or undefined when it is unknown or revoked. */
  authenticate(bearer: string): Promise<Caller | undefined>;
  /** Drops a token from the cache (it was revoked). */
  forget(tokenId: string): void;
  /** Drops every cached token. */
  forgetAll(): void;
}

/** Options of createAuthenticator. */
export interface AuthenticatorOptions {
  /**
   * How long a token read from the store is trusted without reading it again.
   * Revocations announced by any replica end it at once; this bounds only a
   * revocation whose announcement was lost.
   */
  cacheTtlMs?: number;
  /** last_used_at is written at most this often per token, so reads do not turn into writes. */
  touchIntervalMs?: number;
  logger: Logger;
}

interface CachedToken {
  row: TokenRow;
  readAt: number;
}

/**
 * Creates the authenticator over the token store: lookup by id, constant-time
 * hash comparison on every call, and a short-lived cache of token rows so that
 * a call costs no database round trip.
 */
export function createAuthenticator(tokens: TokensStore, options: AuthenticatorOptions): Authenticator {
  const cacheTtlMs = options.cacheTtlMs ?? 30_000;
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const cache = new Map<string, CachedToken>();
  const lastTouched = new Map<string, number>();
  // A revocation racing a store read must not be undone by caching that read.
  let generation = 0;
  const forgotten = new Map<string, number>();

  async function activeToken(id: string, now: number): Promise<TokenRow | undefined> {
    const cached = cache.get(id);
    if (cached && now - cached.readAt < cacheTtlMs) return cached.row;
    const startedAt = generation;
    const row = await tokens.findActive(id);
    const forgottenAt = forgotten.get(id) ?? -1;
    if (row && forgottenAt < startedAt) cache.set(id, { row, readAt: now });
    else cache.delete(id);
    return row;
  }

  return {
    async authenticate(bearer) {
      const now = Date.now();
      const row = await activeToken(tokenIdOf(bearer), now);
      if (!row || !bearerMatches(bearer, row.secretSha256)) return undefined;
      if (now - (lastTouched.get(row.id) ?? 0) >= touchIntervalMs) {
        lastTouched.set(row.id, now);
        tokens.touch(row.id, new Date(now)).catch((error: unknown) => {
          options.logger.warn("could not record token use", { tokenId: row.id, error });
        });
      }
      return { tokenId: row.id, team: row.team, admin: row.admin };
    },
    forget(tokenId) {
      generation++;
      forgotten.set(tokenId, generation);
      cache.delete(tokenId);
    },
    forgetAll() {
      generation++;
      for (const id of cache.keys()) forgotten.set(id, generation);
      cache.clear();
    },
  };
}

/**
 * A call guard (the kit runs it on the headers, before the body is read)
 * requiring `authorization: Bearer <token>` on every RPC except health and
 * reflection; it puts the caller into the context values for the handlers.
 */
export function bearerGuard(authenticator: Authenticator): CallGuard {
  return async ({ header, values }) => {
    const bearer = bearerToken(header);
    if (bearer === undefined) throw unauthenticated("missing authorization: Bearer <token>");
    const caller = await authenticator.authenticate(bearer);
    if (!caller) throw unauthenticated("the token is unknown or revoked");
    values.set(callerKey, caller);
  };
}

/** The caller of the current RPC; the auth interceptor guarantees one on every guarded service. */
export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw unauthenticated("no authenticated caller");
  return caller;
}

/** The caller, who must hold an admin token. */
export function requireAdmin(ctx: HandlerContext): Caller {
  const caller = callerOf(ctx);
  if (!caller.admin) throw permissionDenied("this call needs an admin token");
  return caller;
}

/** The caller's team; admin tokens belong to no team and cannot act on apps. */
export function requireTeam(ctx: HandlerContext): string {
  const caller = callerOf(ctx);
  if (caller.team === undefined) throw permissionDenied("admin tokens manage teams; use a team token to work with apps");
  return caller.team;
}
