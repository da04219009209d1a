import { parseCommandArguments, splitCommandLine } from "./arguments.js";
import type { Command, CommandContext, Environment } from "./command.js";
import { appCommands } from "./commands/apps.js";
import { autoscaleCommands } from "./commands/autoscale.js";
import { deployCommands } from "./commands/deploy.js";
import { domainCommands } from "./commands/domains.js";
import { formationCommands } from "./commands/formation.js";
import { gitCommands } from "./commands/git.js";
import { identityCommands } from "./commands/identity.js";
import { netpolCommands } from "./commands/netpol.js";
import { processCommands } from "./commands/processes.js";
import { releaseCommands } from "./commands/releases.js";
import { canaryCommands } from "./commands/canary.js";
import { rtcCommands } from "./commands/rtc.js";
import { trustCommands } from "./commands/trust.js";
import { createApiSession } from "./api-session.js";
import type { ApiSession } from "./api-session.js";
import { resolveCredentials } from "./credentials.js";
import { describeFailure, ExitCode, UsageError } from "./exit-codes.js";
import { commandHelp, overviewHelp } from "./help.js";
import { createOutput } from "./output.js";
import type { OutputStreams } from "./output.js";

/** Every `berth` command. */
export const commands: readonly Command[] = [
  ...identityCommands,
  ...appCommands,
  ...deployCommands,
  ...gitCommands,
  ...formationCommands,
  ...processCommands,
  ...autoscaleCommands,
  ...releaseCommands,
  ...canaryCommands,
  ...domainCommands,
  ...rtcCommands,
  ...trustCommands,
  ...netpolCommands,
];

/** What the CLI talks to: the process's streams and environment, or a test's. */
export interface CliEnvironment extends OutputStreams {
  env: Environment;
  readStdin(): Promise<string>;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
}

/** Runs one `berth` command line and resolves to its exit code; errors end as one line on stderr. */
export async function runCli(argv: readonly string[], environment: CliEnvironment): Promise<number> {
  const out = createOutput(environment);
  const line = splitCommandLine(argv);
  if (line.name === undefined) {
    if (line.help) {
      out.line(overviewHelp(commands));
      return ExitCode.ok;
    }
    out.note(`berth: unknown option ${line.rest[0]} (see berth --help)`);
    return ExitCode.usage;
  }
  const command = commands.find((candidate) => candidate.name === line.name);
  if (!command) {
    out.note(`berth: unknown command "${line.name}" (see berth --help)`);
    return ExitCode.usage;
  }
  if (line.help) {
    out.line(commandHelp(command));
    return ExitCode.ok;
  }
  try {
    const args = parseCommandArguments(command, line.rest, environment.env.BERTH_APP || undefined);
    let session: ApiSession | undefined;
    const context: CommandContext = {
      args,
      env: environment.env,
      out,
      app() {
        if (!args.app) throw new UsageError(`${command.name}: name the app with --app <app> (or set BERTH_APP)`);
        return args.app;
      },
      async session() {
        session ??= createApiSession(await resolveCredentials(environment.env));
        return session;
      },
      readStdin: environment.readStdin,
      signal: environment.signal ?? new AbortController().signal,
    };
    return (await command.run(context)) ?? ExitCode.ok;
  } catch (error) {
    const failure = describeFailure(error);
    out.note(`berth: ${failure.line}`);
    return failure.exitCode;
  }
}
