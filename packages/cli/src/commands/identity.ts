import type { Command } from "../command.js";
import { createApiSession } from "../api-session.js";
import { removeCredentials, resolveApiUrl, saveCredentials } from "../credentials.js";
import { ageText, timeText } from "../display.js";
import { CliFailure, ExitCode } from "../exit-codes.js";

/** login, logout, whoami, teams, teams:create, tokens, tokens:create, tokens:revoke. */
export const identityCommands: Command[] = [
  {
    name: "login",
    summary: "check a token against the API and save both for later commands",
    usage: "[--api-url <url>] [--token <token>]",
    positionals: { min: 0, max: 0 },
    options: {
      "api-url": { type: "string", placeholder: "<url>", description: "the API (default: BERTH_API_URL, the saved one, or http://127.0.0.1:8080)" },
      token: { type: "string", placeholder: "<token>", description: "the bearer token; read from standard input when left out" },
    },
    details: ["BERTH_API_URL and BERTH_TOKEN, when set, take precedence over what login saved."],
    async run({ args, env, out, readStdin }) {
      const apiUrl = (args.options["api-url"] as string | undefined) ?? (await resolveApiUrl(env));
      const token = ((args.options.token as string | undefined) ?? (await readStdin())).trim();
      if (token === "") throw new CliFailure("no token given: pass --token or pipe it on standard input", ExitCode.usage);
      const { token: me } = await createApiSession({ apiUrl, token }).teams.whoAmI({});
      const file = await saveCredentials(env, { apiUrl, token });
      if (args.json) out.json({ apiUrl, token: me, credentialsFile: file });
      else out.line(`Logged in to ${apiUrl} as ${me?.admin ? "an admin" : `team ${me?.team}`} (token ${me?.id}); saved to ${file}`);
    },
  },
  {
    name: "logout",
    summary: "forget the saved credentials",
    usage: "",
    positionals: { min: 0, max: 0 },
    async run({ env, out }) {
      out.line(`Removed ${await removeCredentials(env)}`);
    },
  },
  {
    name: "whoami",
    summary: "show the team and token in use",
    usage: "",
    positionals: { min: 0, max: 0 },
    async run({ args, out, session }) {
      const { token } = await (await session()).teams.whoAmI({});
      if (args.json) out.json(token);
      else out.line(token?.admin ? `admin (token ${token.id})` : `team ${token?.team} (token ${token?.id})`);
    },
  },
  {
    name: "teams",
    summary: "list teams (admin)",
    usage: "",
    positionals: { min: 0, max: 0 },
    async run({ args, out, session }) {
      const { teams } = await (await session()).teams.listTeams({});
      if (args.json) out.json(teams);
      else
        out.table(
          [
            { header: "name", value: (t) => t.name },
            { header: "created", value: (t) => timeText(t.createdAt) },
          ],
          teams,
          "No teams.",
        );
    },
  },
  {
    name: "teams:create",
    summary: "create a team (admin)",
    usage: "<name>",
    positionals: { min: 1, max: 1 },
    async run({ args, out, session }) {
      const { team } = await (await session()).teams.createTeam({ name: args.positionals[0]! });
      if (args.json) out.json(team);
      else out.line(`Created team ${team?.name}; mint its first token with: berth tokens:create --team ${team?.name}`);
    },
  },
  {
    name: "tokens",
    summary: "list the active tokens of your team (an admin may name a team)",
    usage: "[--team <team>]",
    positionals: { min: 0, max: 0 },
    options: { team: { type: "string", placeholder: "<team>", description: "another team's tokens (admin)" } },
    async run({ args, out, session }) {
      const { tokens } = await (await session()).teams.listTokens({ team: (args.options.team as string | undefined) ?? "" });
      if (args.json) out.json(tokens);
      else
        out.table(
          [
            { header: "id", value: (t) => t.id },
            { header: "team", value: (t) => (t.admin ? "(admin)" : t.team) },
            { header: "description", value: (t) => t.description },
            { header: "created", value: (t) => timeText(t.createdAt) },
            { header: "last used", value: (t) => (t.lastUsedAt ? `${ageText(t.lastUsedAt)} ago` : "never") },
          ],
          tokens,
          "No tokens.",
        );
    },
  },
  {
    name: "tokens:create",
    summary: "mint a bearer token for your team (an admin may name any team); the secret is shown once",
    usage: "[--team <team>] [--description <text>]",
    positionals: { min: 0, max: 0 },
    options: {
      team: { type: "string", placeholder: "<team>", description: "the team the token acts for (admin)" },
      description: { type: "string", placeholder: "<text>", description: "what the token is for" },
    },
    async run({ args, out, session }) {
      const { token, secret } = await (await session()).teams.createToken({
        team: (args.options.team as string | undefined) ?? "",
        description: (args.options.description as string | undefined) ?? "",
      });
      if (args.json) {
        out.json({ token, secret });
        return;
      }
      out.note(`Token ${token?.id} for ${token?.admin ? "admin" : `team ${token?.team}`}; the secret is shown only this once:`);
      out.line(secret);
    },
  },
  {
    name: "tokens:revoke",
    summary: "revoke a token by its id",
    usage: "<id>",
    positionals: { min: 1, max: 1 },
    async run({ args, out, session }) {
      await (await session()).teams.revokeToken({ id: args.positionals[0]! });
      if (args.json) out.json({ revoked: args.positionals[0] });
      else out.line(`Revoked token ${args.positionals[0]}`);
    },
  },
];
