import { createHash, randomBytes } from "node:crypto";
import { secretsEqual } from "@berth/kit";

/** A freshly minted bearer token: the secret goes to the caller once, only the hash is kept. */
export interface MintedToken {
  id: string;
  /** The whole bearer string, `berth_<id>_<secret>`. */
  bearer: string;
  sha256: string;
}

/**
 * The id under which an operator-provided admin token (BERTH_ADMIN_TOKEN) is
 * stored: such a token has any shape, so it carries no id of its own.
 */
export const OPERATOR_ADMIN_TOKEN_ID = "operator-admin";

const MINTED_TOKEN = /^berth_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;

/** Mints a token: a public id for lookup and 256 random bits of secret. */
export function mintToken(): MintedToken {
  const id = randomBytes(8).toString("hex");
  const bearer = `berth_${id}_${randomBytes(32).toString("base64url")}`;
  return { id, bearer, sha256: hashBearer(bearer) };
}

/**
 * The id a presented bearer string claims. Minted tokens carry theirs; any
 * other string can only be the operator's admin token.
 */
export function tokenIdOf(bearer: string): string {
  return MINTED_TOKEN.exec(bearer)?.[1] ?? OPERATOR_ADMIN_TOKEN_ID;
}

/** The hex sha256 stored in place of a bearer string. */
export function hashBearer(bearer: string): string {
  return createHash("sha256").update(bearer).digest("hex");
}

/** Whether a presented bearer string matches a stored hash, in constant time. */
export function bearerMatches(bearer: string, storedSha256: string): boolean {
  return secretsEqual(hashBearer(bearer), storedSha256);
}
