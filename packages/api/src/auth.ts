import { createContextKey } from "@connectrpc/connect";
import type { HandlerContext, Interceptor } from "@connectrpc/connect";
import { bearerToken, permissionDenied, unauthenticated } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { TokensStore } from "./store/index.js";
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
}

/** Options of createAuthenticator. */
export interface AuthenticatorOptions {
  /** last_used_at is written at most this often per token, so reads do not turn into writes. */
  touchIntervalMs?: number;
  logger: Logger;
}

/** Creates the authenticator over the token store: lookup by id, constant-time hash comparison. */
export function createAuthenticator(tokens: TokensStore, options: AuthenticatorOptions): Authenticator {
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const lastTouched = new Map<string, number>();
  return {
    async authenticate(bearer) {
      const row = await tokens.findActive(tokenIdOf(bearer));
      if (!row || !bearerMatches(bearer, row.secretSha256)) return undefined;
      const now = Date.now();
      if (now - (lastTouched.get(row.id) ?? 0) >= touchIntervalMs) {
        lastTouched.set(row.id, now);
        tokens.touch(row.id, new Date(now)).catch((error: unknown) => {
          options.logger.warn("could not record token use", { tokenId: row.id, error });
        });
      }
      return { tokenId: row.id, team: row.team, admin: row.admin };
    },
  };
}

/**
 * A server interceptor requiring `authorization: Bearer <token>` on every RPC
 * except those of the `open` services (health, reflection); it puts the
 * caller into the context values for the handlers.
 */
export function requireBearer(authenticator: Authenticator, open: ReadonlySet<string>): Interceptor {
  return (next) => async (request) => {
    if (open.has(request.service.typeName)) return next(request);
    const bearer = bearerToken(request.header);
    if (bearer === undefined) throw unauthenticated("missing authorization: Bearer <token>");
    const caller = await authenticator.authenticate(bearer);
    if (!caller) throw unauthenticated("the token is unknown or revoked");
    request.contextValues.set(callerKey, caller);
    return next(request);
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
