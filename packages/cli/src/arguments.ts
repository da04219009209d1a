import { parseArgs } from "node:util";
import type { Command, ParsedArguments } from "./command.js";
import { UsageError } from "./exit-codes.js";

/** A command line split into the command's name and the rest. */
export interface CommandLine {
  name: string | undefined;
  rest: string[];
  /** --help anywhere, or `help <command>`. */
  help: boolean;
}

/** Finds the command name: the first argument that is not an option. */
export function splitCommandLine(argv: readonly string[]): CommandLine {
  // Words after `--` belong to a remote command (`run -- ls -h`), never to berth.
  const end = argv.indexOf("--") === -1 ? argv.length : argv.indexOf("--");
  const own = argv.slice(0, end);
  const help = own.includes("--help") || own.includes("-h");
  const args = [...own.filter((arg) => arg !== "--help" && arg !== "-h"), ...argv.slice(end)];
  if (args[0] === "help") return { name: args[1], rest: args.slice(2), help: true };
  if (args[0] === undefined || args[0].startsWith("-")) return { name: undefined, rest: args, help: help || args.length === 0 };
  return { name: args[0], rest: args.slice(1), help };
}

/**
 * Parses a command's arguments strictly: unknown options, missing values and
 * a wrong number of positionals are usage errors naming the problem.
 */
export function parseCommandArguments(command: Command, rest: readonly string[], defaultApp: string | undefined): ParsedArguments {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { json: { type: "boolean" } };
  if (command.app) options.app = { type: "string", short: "a" };
  for (const [name, spec] of Object.entries(command.options ?? {})) options[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${command.name}: ${(error as Error).message.replace(/\. To specify a positional argument.*$/s, "")}`);
  }
  const { positionals, values } = parsed;
  const { min, max } = command.positionals;
  if (positionals.length < min) throw new UsageError(`${command.name}: missing argument, usage: berth ${command.name} ${command.usage}`);
  if (positionals.length > max) throw new UsageError(`${command.name}: unexpected argument "${positionals[max]}"`);
  const own: Record<string, string | boolean | undefined> = {};
  for (const name of Object.keys(command.options ?? {})) own[name] = values[name] as string | boolean | undefined;
  const app = command.app ? ((values.app as string | undefined) ?? defaultApp) : undefined;
  return { positionals, options: own, app, json: Boolean(values.json) };
}

/** Parses `type=value` pairs such as `web=3 worker=1`. */
export function parseAssignments(command: string, pairs: readonly string[]): [string, string][] {
  return pairs.map((pair) => {
    const equals = pair.indexOf("=");
    if (equals <= 0 || equals === pair.length - 1) throw new UsageError(`${command}: expected <name>=<value>, got "${pair}"`);
    return [pair.slice(0, equals), pair.slice(equals + 1)];
  });
}

/** A whole number within [min, max] from an argument, or a usage error naming it. */
export function parseCount(what: string, text: string, min = 0, max = 100_000): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a whole number, got "${text}"`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`${what} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A release version written as "v3" or "3". */
export function parseVersion(text: string): number {
  const match = /^v?(\d+)$/.exec(text);
  if (!match) throw new UsageError(`a release version looks like v3, got "${text}"`);
  return parseCount("the release version", match[1]!, 1, 4_294_967_295);
}
