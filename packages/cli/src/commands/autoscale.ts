import type { Command } from "../command.js";
import { parseCount } from "../arguments.js";
import { UsageError } from "../exit-codes.js";

/** autoscale:set, autoscale:list, autoscale:unset. */
export const autoscaleCommands: Command[] = [
  {
    name: "autoscale:set",
    summary: "keep a type between --min and --max replicas, aiming at a CPU percent of its size",
    usage: "<type> --min <n> --max <n> --cpu-percent <percent> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    options: {
      min: { type: "string", placeholder: "<n>", description: "fewest replicas" },
      max: { type: "string", placeholder: "<n>", description: "most replicas" },
      "cpu-percent": { type: "string", placeholder: "<percent>", description: "target CPU use, 1-100" },
    },
    details: ["Example: berth autoscale:set web --min 3 --max 8 --cpu-percent 75 --app shop"],
    async run({ args, out, session, app }) {
      const required = (name: string) => {
        const value = args.options[name] as string | undefined;
        if (value === undefined) throw new UsageError(`autoscale:set: --${name} is required`);
        return value;
      };
      const rule = {
        processType: args.positionals[0]!,
        minReplicas: parseCount("--min", required("min"), 1, 1000),
        maxReplicas: parseCount("--max", required("max"), 1, 1000),
        targetCpuPercent: parseCount("--cpu-percent", required("cpu-percent"), 1, 100),
      };
      const response = await (await session()).formation.setAutoscale({ app: app(), rule });
      if (args.json) out.json(response.rule);
      else out.line(`Autoscaling ${rule.processType} between ${rule.minReplicas} and ${rule.maxReplicas} replicas at ${rule.targetCpuPercent}% cpu`);
    },
  },
  {
    name: "autoscale:list",
    summary: "list the autoscale rules",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { rules } = await (await session()).formation.listAutoscale({ app: app() });
      if (args.json) out.json(rules);
      else
        out.table(
          [
            { header: "type", value: (r) => r.processType },
            { header: "min", value: (r) => String(r.minReplicas) },
            { header: "max", value: (r) => String(r.maxReplicas) },
            { header: "cpu target", value: (r) => `${r.targetCpuPercent}%` },
          ],
          rules,
          "No autoscale rules.",
        );
    },
  },
  {
    name: "autoscale:unset",
    summary: "stop autoscaling a type; its replica count stays where it is",
    usage: "<type> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    async run({ args, out, session, app }) {
      await (await session()).formation.unsetAutoscale({ app: app(), processType: args.positionals[0]! });
      if (args.json) out.json({ unset: args.positionals[0] });
      else out.line(`Stopped autoscaling ${args.positionals[0]}`);
    },
  },
];
