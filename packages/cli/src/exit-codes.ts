import { Code, ConnectError } from "@connectrpc/connect";

/** The exit codes of `berth`, stable for scripts. */
export const ExitCode = {
  ok: 0,
  /** The API refused or failed the request. */
  failed: 1,
  /** The command line was wrong: unknown command, missing or malformed argument. */
  usage: 2,
  /** Not logged in, or the token is unknown, revoked or not allowed to do this. */
  auth: 3,
  /** The API could not be reached in time. */
  unreachable: 4,
  /** A deploy's rollout failed or was rolled back. */
  rolloutFailed: 5,
} as const;

/** A wrong command line; its message says what to pass instead. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A failure the CLI detected itself (an unreadable directory, a bad Procfile...). */
export class CliFailure extends Error {
  override name = "CliFailure";
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failed,
  ) {
    super(message);
  }
}

function codeText(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

/** The one line and exit code for an error that ended a command. */
export function describeFailure(error: unknown): { line: string; exitCode: number } {
  if (error instanceof UsageError) return { line: `${error.message} (see berth --help)`, exitCode: ExitCode.usage };
  if (error instanceof CliFailure) return { line: error.message, exitCode: error.exitCode };
  const connectError = ConnectError.from(error);
  const line = `${codeText(connectError.code)}: ${connectError.rawMessage}`;
  switch (connectError.code) {
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return { line, exitCode: ExitCode.auth };
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return { line, exitCode: ExitCode.unreachable };
    default:
      return { line, exitCode: ExitCode.failed };
  }
}
