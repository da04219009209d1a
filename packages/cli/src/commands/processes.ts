import { randomUUID } from "node:crypto";
import type { HealthCheck, ProcessFormation } from "@berth/proto/type/v1/process";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { CommandOutput } from "@berth/proto/type/v1/process";
import type { Release, Rollout } from "@berth/proto/type/v1/release";
import type { Command, CommandContext, ParsedArguments } from "../command.js";
import { parseCount } from "../arguments.js";
import { ageText, cpuText, memoryText, replicaStateText, timeText } from "../display.js";
import { CliFailure, ExitCode, UsageError } from "../exit-codes.js";
import { retryUnavailable } from "../retry.js";
import { DETACH_OPTION, reportChange } from "../rollout-progress.js";

/** The settings of a HealthCheck a command line names. */
type HealthSettings = Partial<Omit<HealthCheck, "$typeName">>;

const DURATION = /^(\d+)(ms|s|m)?$/;
/** The exit code of a remote command that was killed or whose end was not seen, as shells report a SIGKILL. */
const KILLED_EXIT_CODE = 137;
/** What a shell exits with on Ctrl-C. */
const INTERRUPTED_EXIT_CODE = 130;

/** A duration such as `500ms`, `1s`, `2m` (a bare number is seconds), in milliseconds. */
export function parseDuration(option: string, text: string): number {
  const match = DURATION.exec(text);
  if (!match) throw new UsageError(`--${option} takes a duration like 500ms, 5s or 2m, got "${text}"`);
  const value = Number(match[1]) * (match[2] === "ms" ? 1 : match[2] === "m" ? 60_000 : 1000);
  if (!Number.isSafeInteger(value) || value > 4_294_967_295) throw new UsageError(`--${option} is too long: "${text}"`);
  return value;
}

function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * The words after `--` as one shell command line: a single word is taken as
 * a whole command line (`berth run -- 'npm run a && npm run b'`); several are
 * quoted one by one so each reaches the command as it was typed.
 */
export function commandLineOf(words: readonly string[]): string {
  if (words.length === 1) return words[0]!;
  return words.map((word) => (/^[A-Za-z0-9_/.,:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`)).join(" ");
}

const HEALTH_OPTIONS = {
  path: { type: "string", placeholder: "<path>", description: "HTTP path probed (web processes), e.g. /up" },
  interval: { type: "string", placeholder: "<duration>", description: "time between checks, e.g. 1s" },
  timeout: { type: "string", placeholder: "<duration>", description: "how long one check may take, e.g. 5s" },
  "start-timeout": { type: "string", placeholder: "<duration>", description: "how long a new replica may take to become healthy, e.g. 30s" },
  "min-ready": { type: "string", placeholder: "<duration>", description: "how long a replica must stay up and passing before it is ready" },
  healthy: { type: "string", placeholder: "<n>", description: "consecutive successes before a replica is healthy" },
  unhealthy: { type: "string", placeholder: "<n>", description: "consecutive failures before a healthy replica is unhealthy" },
  detach: DETACH_OPTION,
} as const;

/** The health settings the options of `healthchecks:set` name; at least one. */
function healthFromOptions(args: ParsedArguments): HealthSettings {
  const option = (name: string) => args.options[name] as string | undefined;
  const health: HealthSettings = {};
  const path = option("path");
  if (path !== undefined) health.path = path;
  const durations = { interval: "intervalMs", timeout: "timeoutMs", "start-timeout": "startTimeoutMs", "min-ready": "minReadyMs" } as const;
  for (const [name, field] of Object.entries(durations)) {
    const text = option(name);
    if (text !== undefined) health[field] = parseDuration(name, text);
  }
  const counts = { healthy: "healthyThreshold", unhealthy: "unhealthyThreshold" } as const;
  for (const [name, field] of Object.entries(counts)) {
    const text = option(name);
    if (text !== undefined) health[field] = parseCount(`--${name}`, text, 1, 100);
  }
  if (Object.keys(health).length === 0) {
    throw new UsageError(
      "healthchecks:set: name at least one setting, e.g. --path /up --interval 1s --timeout 5s --start-timeout 30s --healthy 1 --unhealthy 3",
    );
  }
  return health;
}

/** Ends a health check change: follows its rollout like `deploy`, or says it applies from the first deploy. */
async function reportHealthChange(
  context: CommandContext,
  app: string,
  processType: string,
  response: { release?: Release; rollout?: Rollout; process?: ProcessFormation },
): Promise<void> {
  await reportChange(context, app, response, {
    what: "health check change",
    done: (version) => `Health check of ${processType} changed in v${version} of ${app}`,
    unrolled: `Health check of ${processType} set; it applies from the first deploy`,
    detached: (rollout) => `Released v${rollout.releaseVersion}; rollout ${rollout.id} continues in the background`,
  });
}

/** Streams a remote command's output to ours and resolves to its exit code. */
async function relayCommand(context: CommandContext, outputs: AsyncIterable<{ output?: CommandOutput }>): Promise<number> {
  const { out, signal } = context;
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  try {
    for await (const { output } of outputs) {
      const piece = output?.output;
      if (piece === undefined || piece.case === undefined) continue;
      if (piece.case === "started") out.note(`Running as ${piece.value}...`);
      else if (piece.case === "exit") {
        if (piece.value.reason !== "") out.note(`berth: ${piece.value.reason}`);
        return piece.value.code >= 0 ? piece.value.code : KILLED_EXIT_CODE;
      } else out.passThrough(piece.case, decoders[piece.case].decode(piece.value, { stream: true }));
    }
  } catch (error) {
    // Ctrl-C cancels the call, which stops the command on the platform.
    if (signal.aborted) return INTERRUPTED_EXIT_CODE;
    throw error;
  }
  throw new CliFailure("the command's output ended before it did; see berth logs", ExitCode.unreachable);
}

/** healthchecks, healthchecks:set, healthchecks:unset, run, ps:exec, ps:describe. */
export const processCommands: Command[] = [
  {
    name: "healthchecks",
    summary: "show each process type's health check: path, interval, timeout, start timeout, thresholds",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { processes } = await (await session()).formation.getFormation({ app: app() });
      const checked = processes.filter((process) => process.health !== undefined);
      if (args.json) out.json(checked.map((process) => ({ processType: process.processType, health: process.health })));
      else
        out.table(
          [
            { header: "type", value: (p) => p.processType },
            {
              header: "check",
              value: (p) =>
                p.routingClass === RoutingClass.WEB ? `GET ${p.health!.path}` : p.routingClass === RoutingClass.WORKER ? "running" : "tcp connect",
            },
            { header: "interval", value: (p) => durationText(p.health!.intervalMs) },
            { header: "timeout", value: (p) => durationText(p.health!.timeoutMs) },
            { header: "start-timeout", value: (p) => durationText(p.health!.startTimeoutMs) },
            { header: "min-ready", value: (p) => durationText(p.health!.minReadyMs) },
            { header: "healthy", value: (p) => String(p.health!.healthyThreshold) },
            { header: "unhealthy", value: (p) => String(p.health!.unhealthyThreshold) },
          ],
          checked,
          "No process types yet: deploy first.",
        );
    },
  },
  {
    name: "healthchecks:set",
    summary: "change what healthy means for a type; a new release rolls it out",
    usage: "<type> [--path <path>] [--interval <d>] [--timeout <d>] [--start-timeout <d>] [--healthy <n>] [--unhealthy <n>] --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    options: HEALTH_OPTIONS,
    details: [
      "Example: berth healthchecks:set web --path /up --interval 1s --timeout 5s --start-timeout 30s --healthy 1 --unhealthy 3 --app shop",
      "Settings not named keep their value. The rollout waits for the new check; exits 5 when it fails or is rolled back.",
    ],
    async run(context) {
      const { args, session, app } = context;
      const processType = args.positionals[0]!;
      const request = { app: app(), processType, health: healthFromOptions(args), requestId: randomUUID() };
      const api = await session();
      const response = await retryUnavailable(() => api.processes.setHealthCheck(request));
      await reportHealthChange(context, request.app, processType, response);
    },
  },
  {
    name: "healthchecks:unset",
    summary: "put a type's health check back to the platform's defaults; a new release rolls it out",
    usage: "<type> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    options: { detach: HEALTH_OPTIONS.detach },
    async run(context) {
      const { args, session, app } = context;
      const processType = args.positionals[0]!;
      const request = { app: app(), processType, requestId: randomUUID() };
      const api = await session();
      const response = await retryUnavailable(() => api.processes.unsetHealthCheck(request));
      await reportHealthChange(context, request.app, processType, response);
    },
  },
  {
    name: "run",
    summary: "run a one-off command with the current release's source and config; exits with its exit code",
    usage: "--app <app> -- <command>...",
    app: true,
    positionals: { min: 1, max: 4096 },
    details: ["Example: berth run --app shop -- node scripts/migrate.js", "Its output streams here; Ctrl-C stops it."],
    async run(context) {
      const api = await context.session();
      return relayCommand(context, api.processes.run({ app: context.app(), command: commandLineOf(context.args.positionals) }, { signal: context.signal }));
    },
  },
  {
    name: "ps:exec",
    summary: "run a command beside a running replica, in its container; exits with its exit code",
    usage: "<replica> --app <app> -- <command>...",
    app: true,
    positionals: { min: 2, max: 4096 },
    details: ["Example: berth ps:exec shop-web-v3-x7k2q --app shop -- cat /proc/meminfo"],
    async run(context) {
      const [replica, ...words] = context.args.positionals;
      const api = await context.session();
      return relayCommand(context, api.processes.exec({ app: context.app(), replica: replica!, command: commandLineOf(words) }, { signal: context.signal }));
    },
  },
  {
    name: "ps:describe",
    summary: "show a replica's command, release, size and limits, health check, environment names, restarts and last exit",
    usage: "<replica> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    async run({ args, out, session, app }) {
      const { description } = await (await session()).processes.describeReplica({ app: app(), replica: args.positionals[0]! });
      if (args.json) {
        out.json(description);
        return;
      }
      const replica = description?.replica;
      const health = description?.health;
      const rows: [string, string][] = [
        ["name", replica?.name ?? ""],
        ["type", replica?.processType ?? ""],
        ["release", `v${replica?.releaseVersion ?? 0}`],
        ["command", description?.command || "(the image's own)"],
        ["state", replica ? `${replicaStateText(replica.state)}${replica.ready ? ", ready" : ""}` : ""],
        ["started", replica?.startedAt ? `${timeText(replica.startedAt)} (${ageText(replica.startedAt)} ago)` : "-"],
        ["restarts", String(replica?.restarts ?? 0)],
        ["last exit", replica?.lastExitReason || "-"],
        ["size", `${description?.size} (cpu ${cpuText(description?.cpuMillis ?? 0)}, memory ${memoryText(description?.memoryMb ?? 0)})`],
        ["isolation", replica?.isolation || "-"],
        ["zone", replica?.zone || "-"],
        ["address", replica?.host ? `${replica.host}:${replica.port}` : "-"],
        [
          "health",
          health
            ? `${health.path ? `GET ${health.path} ` : ""}every ${durationText(health.intervalMs)}, timeout ${durationText(health.timeoutMs)}, ` +
              `start timeout ${durationText(health.startTimeoutMs)}, healthy ${health.healthyThreshold}, unhealthy ${health.unhealthyThreshold}`
            : "-",
        ],
        ["environment", (description?.environmentNames ?? []).join(" ") || "-"],
      ];
      const width = Math.max(...rows.map(([label]) => label.length));
      for (const [label, value] of rows) out.line(`${label.padEnd(width)}  ${value}`);
    },
  },
];
