import { randomUUID } from "node:crypto";
import type { Rollout } from "@berth/proto/type/v1/release";
import { canaryText } from "@berth/kit/contract";
import type { Command } from "../command.js";
import { parseAssignments, parseVersion } from "../arguments.js";
import { releaseStatusText, timeText } from "../display.js";
import { retryUnavailable } from "../retry.js";
import { DETACH_OPTION, reportChange } from "../rollout-progress.js";

/** What a config change says: before the app's first deploy it makes no release, the values wait for that deploy. */
function configChangeWords(change: string, app: string) {
  return {
    what: "config change",
    done: (version: number) => `${change} in v${version} of ${app}`,
    unrolled: `${change}: no release yet, the values apply at the first deploy`,
    detached: (rollout: Rollout) => `${change}: release v${rollout.releaseVersion} is rolling out`,
  };
}

/** config, config:set, config:unset, releases, rollback. */
export const releaseCommands: Command[] = [
  {
    name: "config",
    summary: "show the config vars",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { config } = await (await session()).apps.getConfig({ app: app() });
      if (args.json) {
        out.json(config);
        return;
      }
      const keys = Object.keys(config).sort();
      if (keys.length === 0) out.line("No config vars.");
      const width = Math.max(0, ...keys.map((key) => key.length));
      for (const key of keys) out.line(`${(`${key}:`).padEnd(width + 1)} ${config[key]}`);
    },
  },
  {
    name: "config:set",
    summary: "set config vars; makes a new release and rolls it out",
    usage: "<KEY>=<value>... --app <app> [--detach]",
    app: true,
    positionals: { min: 1, max: 256 },
    options: { detach: DETACH_OPTION },
    details: ["Follows the rollout like deploy; exits 5 when it fails or is rolled back."],
    async run(context) {
      const { args, session, app } = context;
      const set = Object.fromEntries(parseAssignments("config:set", args.positionals));
      const { apps } = await session();
      const request = { app: app(), set, requestId: randomUUID() };
      const response = await retryUnavailable(() => apps.updateConfig(request));
      await reportChange(context, request.app, response, configChangeWords(`Set ${Object.keys(set).join(", ")}`, request.app));
    },
  },
  {
    name: "config:unset",
    summary: "remove config vars; makes a new release and rolls it out",
    usage: "<KEY>... --app <app> [--detach]",
    app: true,
    positionals: { min: 1, max: 256 },
    options: { detach: DETACH_OPTION },
    details: ["Follows the rollout like deploy; exits 5 when it fails or is rolled back."],
    async run(context) {
      const { args, session, app } = context;
      const { apps } = await session();
      const request = { app: app(), unset: args.positionals, requestId: randomUUID() };
      const response = await retryUnavailable(() => apps.updateConfig(request));
      await reportChange(context, request.app, response, configChangeWords(`Unset ${args.positionals.join(", ")}`, request.app));
    },
  },
  {
    name: "releases",
    summary: "list releases, newest first",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { releases } = await (await session()).apps.listReleases({ app: app() });
      const newestFirst = [...releases].sort((a, b) => b.version - a.version);
      if (args.json) out.json(newestFirst);
      else
        out.table(
          [
            { header: "version", value: (r) => `v${r.version}` },
            { header: "status", value: (r) => releaseStatusText(r.status) + (r.failureReason ? ` (${r.failureReason})` : "") },
            // Seven digits, as git shows a commit in short.
            { header: "commit", value: (r) => r.artifact?.commit.slice(0, 7) || "-" },
            { header: "description", value: (r) => r.description || (r.rollbackOfVersion ? `Rollback to v${r.rollbackOfVersion}` : "-") },
            { header: "created", value: (r) => timeText(r.createdAt) },
            // What the routers counted while the release rolled out.
            { header: "rollout", value: (r) => (r.rolloutTraffic ? `${r.rolloutTraffic.requests} requests, ${r.rolloutTraffic.failed} failed` : "-") },
            // How the canary that brought it in (or failed to) ended, and what its release served meanwhile.
            { header: "canary", value: (r) => (r.canary ? canaryText(r.canary, r.version) : "-") },
          ],
          newestFirst,
          "No releases yet.",
        );
    },
  },
  {
    name: "rollback",
    summary: "make a new release from an older one (default: the one before the current) and roll it out",
    usage: "[v<version>] --app <app> [--detach]",
    app: true,
    positionals: { min: 0, max: 1 },
    options: { detach: DETACH_OPTION },
    details: ["Follows the rollout like deploy; exits 5 when it fails or is rolled back."],
    async run(context) {
      const { args, session, app } = context;
      const version = args.positionals[0] === undefined ? 0 : parseVersion(args.positionals[0]);
      const { apps } = await session();
      const request = { app: app(), version, requestId: randomUUID() };
      const response = await retryUnavailable(() => apps.rollback(request));
      const target = `v${response.release?.rollbackOfVersion || version}`;
      await reportChange(context, request.app, response, {
        what: "rollback",
        done: (released) => `Rolled back to ${target}: v${released} serves ${request.app}`,
        unrolled: `Rolled back to ${target}: release v${response.release?.version} made`,
        detached: () => `Rolled back to ${target}: release v${response.release?.version} is rolling out`,
      });
    },
  },
];
