import type { Command } from "../command.js";
import { parseCount } from "../arguments.js";
import { UsageError } from "../exit-codes.js";

/** `app` or `app/process`. */
function target(command: string, text: string, processRequired: boolean): { app: string; processType: string } {
  const [app, processType = "", rest] = text.split("/");
  if (!app || rest !== undefined || (processRequired && !processType)) {
    throw new UsageError(`${command}: expected ${processRequired ? "<app>/<process>" : "<app>[/<process>]"}, got "${text}"`);
  }
  return { app, processType };
}

/** netpol:explain and netpol:matrix: what the compiled network policies let through. */
export const netpolCommands: Command[] = [
  {
    name: "netpol:explain",
    summary: "can app A (or one of its processes) reach app B's process, and why or why not",
    usage: "<from-app>[/<process>] <to-app>/<process> [--port <n>]",
    positionals: { min: 2, max: 2 },
    options: { port: { type: "string", placeholder: "<n>", description: "the port tried (default: the process's own)" } },
    details: ["Example: berth netpol:explain api-app grpc-app/grpc-tcp", "The answer comes from the compiled policies and names the rule that decided."],
    async run({ args, out, session }) {
      const from = target("netpol:explain", args.positionals[0]!, false);
      const to = target("netpol:explain", args.positionals[1]!, true);
      const port = args.options.port === undefined ? 0 : parseCount("--port", args.options.port as string, 1, 65535);
      const { verdict } = await (await session()).trust.explain({
        fromApp: from.app,
        fromProcessType: from.processType,
        toApp: to.app,
        toProcessType: to.processType,
        port,
      });
      if (args.json) return out.json(verdict);
      out.line(`${verdict?.allowed ? "ALLOWED" : "DENIED"}: ${args.positionals[0]} -> ${args.positionals[1]}${port ? ` port ${port}` : ""}`);
      for (const reason of verdict?.reasons ?? []) out.line(`  - ${reason}`);
      if (verdict?.policies.length) out.line(`  policies: ${verdict.policies.join(", ")}`);
    },
  },
  {
    name: "netpol:matrix",
    summary: "who can reach what in your team: every app against every process",
    usage: "[--allowed]",
    positionals: { min: 0, max: 0 },
    options: { allowed: { type: "boolean", description: "list only the paths that are open" } },
    async run({ args, out, session }) {
      const { entries } = await (await session()).trust.getMatrix({});
      const rows = args.options.allowed ? entries.filter((entry) => entry.allowed) : entries;
      if (args.json) return out.json(rows);
      out.table(
        [
          { header: "from", value: (entry) => entry.fromApp },
          { header: "to", value: (entry) => `${entry.toApp}/${entry.toProcessType}` },
          { header: "port", value: (entry) => (entry.port ? String(entry.port) : "-") },
          { header: "reach", value: (entry) => (entry.allowed ? "allowed" : "denied") },
        ],
        rows,
        "No paths: the team has no apps with processes yet.",
      );
    },
  },
];
