import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { failedPrecondition, notFound, permissionDenied } from "@berth/kit";
import { CreateTeamRequestSchema, CreateTeamResponseSchema, type TeamService } from "@berth/proto/api/v1/identity";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TeamSchema, TokenSchema } from "@berth/proto/type/v1/identity";
import { callerOf, requireAdmin } from "../auth.js";
import type { Caller } from "../auth.js";
import { createFieldChecks } from "@berth/kit";
import type { ApiStore, TeamRow, TokenRow } from "../store/index.js";
import type { TokenRevocations } from "../token-revocations.js";
import { mintToken } from "../token-secrets.js";
import { runOnce } from "./idempotency.js";

const MAX_DESCRIPTION = 200;

function teamMessage(team: TeamRow): MessageInitShape<typeof TeamSchema> {
  return { name: team.name, createdAt: timestampFromDate(team.createdAt) };
}

function tokenMessage(token: TokenRow): MessageInitShape<typeof TokenSchema> {
  return {
    id: token.id,
    team: token.team ?? "",
    description: token.description,
    admin: token.admin,
    createdAt: timestampFromDate(token.createdAt),
    lastUsedAt: token.lastUsedAt ? timestampFromDate(token.lastUsedAt) : undefined,
  };
}

/**
 * The team a token call is about: the caller's own by default; an admin may
 * name any team, and with none means the admin tokens themselves.
 */
async function targetTeam(store: ApiStore, caller: Caller, requested: string): Promise<string | undefined> {
  if (!caller.admin) {
    if (requested !== "" && requested !== caller.team) throw permissionDenied("a team token can only manage its own team's tokens");
    return caller.team;
  }
  if (requested === "") return undefined;
  if (!(await store.teams.get(requested))) throw notFound(`team "${requested}" not found`);
  return requested;
}

/** TeamService: teams (admin only) and the bearer tokens of a team. */
export function createTeamService(store: ApiStore, revocations: TokenRevocations): ServiceImpl<typeof TeamService> {
  return {
    async createTeam(request, ctx) {
      requireAdmin(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("name", request.name);
      checks.requestId("request_id", request.requestId);
      checks.throwIfAny();
      return runOnce(
        store.requestIds,
        { owner: "", method: "TeamService/CreateTeam", requestSchema: CreateTeamRequestSchema, request, responseSchema: CreateTeamResponseSchema },
        async () => ({ team: teamMessage(await store.teams.create(request.name)) }),
      );
    },
    async listTeams(_request, ctx) {
      requireAdmin(ctx);
      return { teams: (await store.teams.list()).map(teamMessage) };
    },
    async createToken(request, ctx) {
      const caller = callerOf(ctx);
      const checks = createFieldChecks();
      if (request.team !== "") checks.dnsLabel("team", request.team);
      checks.maxLength("description", request.description, MAX_DESCRIPTION);
      checks.throwIfAny();
      const team = await targetTeam(store, caller, request.team);
      const minted = mintToken();
      const token = await store.tokens.insert({
        id: minted.id,
        team,
        admin: team === undefined,
        description: request.description,
        secretSha256: minted.sha256,
      });
      return { token: tokenMessage(token), secret: minted.bearer };
    },
    async listTokens(request, ctx) {
      const caller = callerOf(ctx);
      const checks = createFieldChecks();
      if (request.team !== "") checks.dnsLabel("team", request.team);
      checks.throwIfAny();
      const team = await targetTeam(store, caller, request.team);
      return { tokens: (await store.tokens.listActive(team)).map(tokenMessage) };
    },
    async revokeToken(request, ctx) {
      const caller = callerOf(ctx);
      const checks = createFieldChecks();
      checks.required("id", request.id, 64);
      checks.throwIfAny();
      const token = await store.tokens.findActive(request.id);
      // Another team's token is as unknown to the caller as a missing one.
      if (!token || (!caller.admin && token.team !== caller.team)) throw notFound(`token "${request.id}" not found`);
      const outcome = await store.tokens.revokeKeepingAnAdmin(token.id);
      if (outcome === "last-admin") throw failedPrecondition("this is the last admin token; create another admin token before revoking it");
      if (outcome === "not-found") throw notFound(`token "${request.id}" not found`);
      await revocations.announce(token.id);
      return {};
    },
    async whoAmI(_request, ctx) {
      const caller = callerOf(ctx);
      const token = await store.tokens.findActive(caller.tokenId);
      if (!token) throw notFound(`token "${caller.tokenId}" not found`);
      return { token: tokenMessage(token) };
    },
  };
}
