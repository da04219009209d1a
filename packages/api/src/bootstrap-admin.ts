import type { TokensStore } from "./store/index.js";
import { hashBearer, mintToken, tokenIdOf } from "./token-secrets.js";

/**
 * Makes sure an admin can reach a fresh install. An operator's token
 * (BERTH_ADMIN_TOKEN) is stored, hashed, in place of any earlier one; without
 * it, the first start mints an admin token and returns it so that it can be
 * printed once. Later starts return undefined: the secret is never kept.
 */
export async function ensureAdminToken(tokens: TokensStore, operatorToken: string | undefined): Promise<string | undefined> {
  if (operatorToken !== undefined) {
    await tokens.putAdmin(tokenIdOf(operatorToken), hashBearer(operatorToken), "operator admin token (BERTH_ADMIN_TOKEN)");
    return undefined;
  }
  if (await tokens.hasActiveAdmin()) return undefined;
  const minted = mintToken();
  await tokens.insert({ id: minted.id, team: undefined, admin: true, description: "bootstrap admin token", secretSha256: minted.sha256 });
  return minted.bearer;
}
