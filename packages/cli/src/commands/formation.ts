import type { Command } from "../command.js";
import { parseAssignments, parseCount } from "../arguments.js";
import { ageText, cpuText, isolationText, memoryText, replicaStateText, timeText } from "../display.js";
import { UsageError } from "../exit-codes.js";
import { ISOLATION_NONE, printFormation } from "../formation-table.js";
import { DETACH_OPTION, followChange, reportChange } from "../rollout-progress.js";

const MAX_REPLICAS = 1000;
// Explicit resources: cpu in millicores, memory in megabytes (or G).
const RESOURCES = /^(?:cpu=(\d+)m?)?,?(?:memory=(\d+)(M|G)?)?$/;

/** pods, pods:scale, pods:type, pods:sizes, ps, ps:restart, ps:delete, logs. */
export const formationCommands: Command[] = [
  {
    name: "pods",
    summary: "show the formation: per type replicas, size, cpu/memory, routing, autoscale and where it is reachable",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { processes } = await (await session()).formation.getFormation({ app: app() });
      if (args.json) out.json(processes);
      else printFormation(out, processes);
    },
  },
  {
    name: "pods:scale",
    summary: "set replica counts; 0 stops a type without removing it",
    usage: "<type>=<n>... --app <app>",
    app: true,
    positionals: { min: 1, max: 64 },
    details: ["Example: berth pods:scale web=3 worker=1 --app shop"],
    async run({ args, out, session, app }) {
      const replicas = Object.fromEntries(
        parseAssignments("pods:scale", args.positionals).map(([type, count]) => [type, parseCount(`replicas of ${type}`, count, 0, MAX_REPLICAS)]),
      );
      const { processes } = await (await session()).formation.scale({ app: app(), replicas });
      if (args.json) out.json(processes);
      else printFormation(out, processes);
    },
  },
  {
    name: "pods:type",
    summary: "set pod sizes (standard-1x ... standard-16x), or explicit cpu/memory",
    usage: "<type>=<size>... --app <app> [--detach]",
    app: true,
    positionals: { min: 1, max: 64 },
    options: { detach: DETACH_OPTION },
    details: [
      "Examples: berth pods:type web=standard-2x worker=standard-1x --app shop",
      "          berth pods:type worker=cpu=500m,memory=1G --app shop",
      "Running replicas roll onto the new resources; the rollout is followed like deploy's (exits 5 when it fails).",
    ],
    async run(context) {
      const { args, out, session, app } = context;
      const changes = parseAssignments("pods:type", args.positionals).map(([processType, value]) => {
        if (!value.startsWith("cpu=") && !value.startsWith("memory=")) return { processType, size: value };
        const resources = RESOURCES.exec(value);
        if (!resources) throw new UsageError(`pods:type: expected ${processType}=cpu=<millicores>m,memory=<megabytes>M, got "${value}"`);
        const memory = resources[2] === undefined ? undefined : Number(resources[2]) * (resources[3] === "G" ? 1024 : 1);
        return { processType, cpuMillis: resources[1] === undefined ? undefined : Number(resources[1]), memoryMb: memory };
      });
      const api = await session();
      const { processes, rollout } = await api.formation.resize({ app: app(), changes });
      if (rollout === undefined || args.options.detach) {
        if (args.json) out.json(processes);
        else printFormation(out, processes);
        if (rollout && !args.json) out.line(`Rolling the replicas onto the new resources (rollout ${rollout.id})`);
        return;
      }
      if (!args.json) printFormation(out, processes);
      const types = changes.map((change) => change.processType).join(", ");
      await followChange(
        { out, json: args.json, signal: context.signal },
        api,
        app(),
        { release: undefined, rollout },
        {
          what: `resize of ${types}`,
          done: (version) => `Resized ${types} (v${version})`,
        },
      );
    },
  },
  {
    name: "pods:sizes",
    summary: "list the pod sizes and their cpu and memory",
    usage: "",
    positionals: { min: 0, max: 0 },
    async run({ args, out, session }) {
      const { sizes } = await (await session()).formation.listPodSizes({});
      if (args.json) out.json(sizes);
      else
        out.table(
          [
            { header: "size", value: (s) => s.name },
            { header: "cpu", value: (s) => cpuText(s.cpuMillis) },
            { header: "memory", value: (s) => memoryText(s.memoryMb) },
          ],
          sizes,
          "No sizes.",
        );
    },
  },
  {
    name: "ps",
    summary: "list the running replicas",
    usage: "[--type <type>] --app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    options: { type: { type: "string", placeholder: "<type>", description: "only this process type" } },
    async run({ args, out, session, app }) {
      const { replicas } = await (await session()).formation.listReplicas({
        app: app(),
        processType: (args.options.type as string | undefined) ?? "",
      });
      if (args.json) out.json(replicas);
      else
        out.table(
          [
            { header: "name", value: (r) => r.name },
            { header: "type", value: (r) => r.processType },
            { header: "release", value: (r) => `v${r.releaseVersion}` },
            { header: "state", value: (r) => replicaStateText(r.state) },
            { header: "ready", value: (r) => (r.ready ? "yes" : "no") },
            { header: "restarts", value: (r) => (r.lastExitReason === "" ? String(r.restarts) : `${r.restarts} (${r.lastExitReason})`) },
            { header: "age", value: (r) => ageText(r.startedAt) },
            { header: "zone", value: (r) => r.zone || "-" },
            { header: "isolation", value: (r) => isolationText(r.isolation) },
          ],
          replicas,
          "No replicas running.",
        );
      if (!args.json && replicas.some((replica) => replica.isolation === "none")) out.note(ISOLATION_NONE);
    },
  },
  {
    name: "ps:restart",
    summary: "restart every replica of a type, one at a time, gated by health",
    usage: "<type> --app <app> [--detach]",
    app: true,
    positionals: { min: 1, max: 1 },
    options: { detach: DETACH_OPTION },
    details: ["Follows the rollout like deploy; exits 5 when it fails."],
    async run(context) {
      const { args, session, app } = context;
      const processType = args.positionals[0]!;
      const { rollout } = await (await session()).formation.restartProcess({ app: app(), processType });
      await reportChange(
        context,
        app(),
        { rollout },
        {
          what: `restart of ${processType}`,
          done: (version) => `Restarted ${processType} (v${version})`,
          unrolled: `Restarting ${processType}`,
          detached: (started) => `Restarting ${processType} (rollout ${started.id})`,
        },
      );
    },
  },
  {
    name: "ps:delete",
    summary: "stop one replica; the formation starts a replacement",
    usage: "<replica> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    async run({ args, out, session, app }) {
      await (await session()).formation.deleteReplica({ app: app(), replica: args.positionals[0]! });
      if (args.json) out.json({ deleted: args.positionals[0] });
      else out.line(`Deleted ${args.positionals[0]}; a replacement is starting`);
    },
  },
  {
    name: "logs",
    summary: "show recent log lines; -f keeps following",
    usage: "[-f] [--type <type>] [--replica <name>] [-n <lines>] --app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    options: {
      follow: { type: "boolean", short: "f", description: "keep the stream open for new lines (Ctrl-C ends it)" },
      type: { type: "string", placeholder: "<type>", description: "only this process type" },
      replica: { type: "string", placeholder: "<name>", description: "only this replica" },
      num: { type: "string", short: "n", placeholder: "<lines>", description: "how many past lines first (default 100)" },
    },
    async run({ args, out, session, app, signal }) {
      const tailLines = parseCount("-n", (args.options.num as string | undefined) ?? "100", 0, 10_000);
      const lines = (await session()).formation.streamLogs(
        {
          app: app(),
          processType: (args.options.type as string | undefined) ?? "",
          replica: (args.options.replica as string | undefined) ?? "",
          tailLines,
          follow: Boolean(args.options.follow),
        },
        { signal },
      );
      try {
        for await (const { line } of lines) {
          if (!line) continue;
          if (args.json) out.line(JSON.stringify({ time: timeText(line.time), processType: line.processType, replica: line.replica, text: line.text }));
          else out.line(`${timeText(line.time)} ${line.replica || line.processType}: ${line.text}`);
        }
      } catch (error) {
        // Ctrl-C ends a follow: that is how it is meant to stop.
        if (!signal.aborted) throw error;
      }
    },
  },
];
