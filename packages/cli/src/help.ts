import type { Command } from "./command.js";
import { ExitCode } from "./exit-codes.js";

const GROUPS: [string, string[]][] = [
  ["Identity", ["login", "logout", "whoami", "teams", "teams:create", "tokens", "tokens:create", "tokens:revoke"]],
  ["Apps", ["apps", "apps:create", "apps:info", "apps:destroy", "deploy"]],
  ["Processes", ["pods", "pods:scale", "pods:type", "pods:sizes", "ps", "ps:restart", "ps:delete", "logs"]],
  ["Autoscale", ["autoscale:set", "autoscale:list", "autoscale:unset"]],
  ["Releases and config", ["releases", "rollback", "config", "config:set", "config:unset"]],
  ["Domains", ["domains", "domains:add", "domains:remove"]],
];

/** `berth --help`: every command, grouped, with the environment and exit codes. */
export function overviewHelp(commands: readonly Command[]): string {
  const byName = new Map(commands.map((command) => [command.name, command]));
  const width = Math.max(...commands.map((command) => command.name.length));
  const lines = ["Usage: berth <command> [arguments] [--app <app>] [--json]", ""];
  for (const [group, names] of GROUPS) {
    lines.push(`${group}:`);
    for (const name of names) lines.push(`  ${name.padEnd(width)}  ${byName.get(name)?.summary ?? ""}`);
    lines.push("");
  }
  lines.push(
    "Every command takes --help and --json (machine-readable output).",
    "",
    "Environment:",
    "  BERTH_API_URL     the API (over what login saved; default http://127.0.0.1:8080)",
    "  BERTH_TOKEN       the bearer token (over what login saved)",
    "  BERTH_APP         the app when --app is left out",
    "  BERTH_CONFIG_DIR  where login saves credentials.json (default ~/.config/berth)",
    "",
    "Exit codes:",
    `  ${ExitCode.ok} done  ${ExitCode.failed} refused or failed  ${ExitCode.usage} bad command line  ${ExitCode.auth} not logged in or not allowed`,
    `  ${ExitCode.unreachable} API unreachable  ${ExitCode.rolloutFailed} rollout failed or rolled back`,
  );
  return lines.join("\n");
}

/** `berth <command> --help`. */
export function commandHelp(command: Command): string {
  const lines = [`Usage: berth ${command.name} ${command.usage}`.trimEnd(), "", `${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.`];
  const options: [string, string][] = [];
  for (const [name, spec] of Object.entries(command.options ?? {})) {
    const flag = `${spec.short ? `-${spec.short}, ` : ""}--${name}${spec.placeholder ? ` ${spec.placeholder}` : ""}`;
    options.push([flag, spec.description]);
  }
  if (command.app) options.push(["-a, --app <app>", "the app (default: BERTH_APP)"]);
  options.push(["--json", "machine-readable output"], ["-h, --help", "this help"]);
  const width = Math.max(...options.map(([flag]) => flag.length));
  lines.push("", "Options:", ...options.map(([flag, description]) => `  ${flag.padEnd(width)}  ${description}`));
  if (command.details?.length) lines.push("", ...command.details);
  return lines.join("\n");
}
