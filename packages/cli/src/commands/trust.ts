import type { Command } from "../command.js";
import { UsageError } from "../exit-codes.js";
import type { Output } from "../output.js";

const MAX_NAMES = 100;

/** App names from positionals, each of which may be a comma-separated list. */
function appNames(command: string, positionals: readonly string[]): string[] {
  const names = positionals.flatMap((positional) => positional.split(",")).map((name) => name.trim());
  if (names.some((name) => name === "")) throw new UsageError(`${command}: expected app names separated by commas, got "${positionals.join(" ")}"`);
  return names;
}

function printTrust(out: Output, json: boolean, trust: { app: string; trustedApps: string[] } | undefined): void {
  if (json) out.json(trust);
  else if (!trust || trust.trustedApps.length === 0)
    out.line(`Nobody is trusted: the *-tcp processes of ${trust?.app} are reachable only from its own processes.`);
  else out.line(`${trust.app} trusts ${trust.trustedApps.join(", ")}: they may reach its *-tcp processes.`);
}

/** apps:trust, apps:trust:add, apps:trust:remove: who may reach an app's `*-tcp` processes. */
export const trustCommands: Command[] = [
  {
    name: "apps:trust",
    summary: "show or set the apps of the team that may reach the app's *-tcp processes",
    usage: "[<app>,<app>...] [--clear] --app <app>",
    app: true,
    positionals: { min: 0, max: MAX_NAMES },
    options: { clear: { type: "boolean", description: "revoke everyone" } },
    details: [
      "Examples: berth apps:trust api-app,billing-app --app grpc-app   (the list becomes exactly these)",
      "          berth apps:trust --app grpc-app                        (show it)",
      "          berth apps:trust --clear --app grpc-app                (revoke everyone)",
      "Trust is directional: api-app may then call grpc-app at grpc-app-<process>, not the other way round.",
    ],
    async run({ args, out, session, app }) {
      const names = appNames("apps:trust", args.positionals);
      const api = (await session()).trust;
      if (args.options.clear) {
        if (names.length > 0) throw new UsageError("apps:trust: --clear takes no app names");
        await api.clearTrust({ app: app() });
        printTrust(out, args.json, { app: app(), trustedApps: [] });
      } else if (names.length === 0) {
        printTrust(out, args.json, (await api.getTrust({ app: app() })).trust);
      } else {
        printTrust(out, args.json, (await api.setTrust({ app: app(), trustedApps: names })).trust);
      }
    },
  },
  {
    name: "apps:trust:add",
    summary: "let more apps of the team reach the app's *-tcp processes",
    usage: "<app>[,<app>...] --app <app>",
    app: true,
    positionals: { min: 1, max: MAX_NAMES },
    details: ["Example: berth apps:trust:add api-app --app grpc-app"],
    async run({ args, out, session, app }) {
      const { trust } = await (await session()).trust.addTrust({ app: app(), trustedApps: appNames("apps:trust:add", args.positionals) });
      printTrust(out, args.json, trust);
    },
  },
  {
    name: "apps:trust:remove",
    summary: "stop one app from reaching the app's *-tcp processes",
    usage: "<app> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    details: ["Example: berth apps:trust:remove api-app --app grpc-app"],
    async run({ args, out, session, app }) {
      const { trust } = await (await session()).trust.removeTrust({ app: app(), trustedApp: args.positionals[0]! });
      printTrust(out, args.json, trust);
    },
  },
];
