import type { ApiSession } from "./api-session.js";
import type { Output } from "./output.js";

/** The environment variables the CLI reads (process.env, or a test's own). */
export type Environment = Record<string, string | undefined>;

/** One option a command takes besides the global ones. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Shown in --help, e.g. "<type>". */
  placeholder?: string;
  description: string;
}

/** The parsed command line of one command. */
export interface ParsedArguments {
  positionals: string[];
  /** Values of the command's own options. */
  options: Record<string, string | boolean | undefined>;
  /** --app / -a, or BERTH_APP. */
  app: string | undefined;
  json: boolean;
}

/** What a command's run function gets. */
export interface CommandContext {
  args: ParsedArguments;
  env: Environment;
  out: Output;
  /** The app named by --app (or BERTH_APP); a usage error when missing. */
  app(): string;
  /** Clients of the API with the resolved credentials. */
  session(): Promise<ApiSession>;
  /** Reads all of standard input (for `login` without --token). */
  readStdin(): Promise<string>;
  /** Aborted on Ctrl-C, so that follows end cleanly. */
  signal: AbortSignal;
}

/** A `berth` command: its name, its help and what it does. */
export interface Command {
  /** "pods:scale". */
  name: string;
  summary: string;
  /** Arguments after the name, e.g. "<type>=<n>...". */
  usage: string;
  /** Whether the command acts on one app (takes --app). */
  app?: boolean;
  positionals: { min: number; max: number };
  options?: Record<string, OptionSpec>;
  /** Lines of examples and details for --help. */
  details?: string[];
  /** Resolves to the exit code; undefined means success. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a command that only prints returns nothing, which means exit code 0
  run(context: CommandContext): Promise<number | void>;
}
