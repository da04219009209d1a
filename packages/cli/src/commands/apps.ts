import { randomUUID } from "node:crypto";
import type { Command } from "../command.js";
import { releaseStatusText, timeText } from "../display.js";
import { CliFailure, ExitCode } from "../exit-codes.js";
import { printFormation } from "../formation-table.js";
import { retryUnavailable } from "../retry.js";

/** apps, apps:create, apps:info, apps:destroy. */
export const appCommands: Command[] = [
  {
    name: "apps",
    summary: "list your team's apps",
    usage: "",
    positionals: { min: 0, max: 0 },
    async run({ args, out, session }) {
      const { apps } = await (await session()).apps.listApps({});
      if (args.json) out.json(apps);
      else
        out.table(
          [
            { header: "name", value: (a) => a.name },
            { header: "release", value: (a) => (a.currentReleaseVersion ? `v${a.currentReleaseVersion}` : "-") },
            { header: "rolling out", value: (a) => a.activeRolloutId || "-" },
            { header: "created", value: (a) => timeText(a.createdAt) },
          ],
          apps,
          "No apps yet: create one with berth apps:create <name>.",
        );
    },
  },
  {
    name: "apps:create",
    summary: "create an app (names are global: they make hostnames)",
    usage: "<name>",
    positionals: { min: 1, max: 1 },
    async run({ args, out, session }) {
      const { apps } = await session();
      const request = { name: args.positionals[0]!, requestId: randomUUID() };
      const { app } = await retryUnavailable(() => apps.createApp(request));
      if (args.json) out.json(app);
      else out.line(`Created app ${app?.name} for team ${app?.team}; deploy it with: berth deploy <dir> --app ${app?.name}`);
    },
  },
  {
    name: "apps:info",
    summary: "show an app: its release and its formation",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const info = await (await session()).apps.getApp({ app: app() });
      if (args.json) {
        out.json(info);
        return;
      }
      const release = info.currentRelease;
      out.line(`=== ${info.app?.name}`);
      out.line(`Team:      ${info.app?.team}`);
      out.line(`Created:   ${timeText(info.app?.createdAt)}`);
      out.line(`Release:   ${release ? `v${release.version} (${releaseStatusText(release.status)}) ${release.description}`.trimEnd() : "none yet"}`);
      if (info.app?.activeRolloutId) out.line(`Rollout:   ${info.app.activeRolloutId} in progress`);
      if (info.app?.deleting) out.line("Status:    being deleted; it goes once its processes have stopped");
      out.line("");
      printFormation(out, info.processes);
    },
  },
  {
    name: "apps:destroy",
    summary: "delete an app: stop its processes, remove its routes and domains, then the app",
    usage: "--app <app> --confirm <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    options: { confirm: { type: "string", placeholder: "<app>", description: "the app's name again, to be sure" } },
    async run({ args, out, session, app }) {
      const name = app();
      if (args.options.confirm !== name) {
        throw new CliFailure(`this deletes ${name} and everything it runs; pass --confirm ${name} to go ahead`, ExitCode.usage);
      }
      const { deletionContinues } = await (await session()).apps.deleteApp({ app: name });
      if (args.json) out.json({ deleted: name, deletionContinues });
      else if (deletionContinues) {
        out.line(
          `Destroying ${name}: its routes are gone and its replicas are stopping (SIGTERM, then SIGKILL after the grace period); it disappears from \`berth apps\` once they have`,
        );
      } else out.line(`Destroyed ${name}`);
    },
  },
];
