import { Code, ConnectError } from "@connectrpc/connect";
import type { Release, Rollout, RolloutEvent } from "@berth/proto/type/v1/release";
import { RolloutState } from "@berth/proto/type/v1/release";
import type { ApiSession } from "./api-session.js";
import type { CommandContext, OptionSpec } from "./command.js";
import { canaryText, rolloutEventText, trafficText } from "@berth/kit/contract";
import { rolloutStateText, timeText } from "./display.js";
import { CliFailure, ExitCode } from "./exit-codes.js";
import type { Output } from "./output.js";

/** Whether a rollout has ended, one way or the other. */
export function rolloutEnded(rollout: Rollout | undefined): boolean {
  return (
    rollout !== undefined && (rollout.state === RolloutState.SUCCEEDED || rollout.state === RolloutState.FAILED || rollout.state === RolloutState.ROLLED_BACK)
  );
}

const MAX_RECONNECTS = 5;

/**
 * Follows a rollout until it ends, calling `onEvent` for each step. A stream
 * that drops or closes before the end (the API restarting, a proxy timing
 * out) is resumed after the last step seen, so no step is shown twice or lost.
 */
export async function followRollout(
  session: ApiSession,
  app: string,
  rolloutId: string,
  onEvent: (event: RolloutEvent) => void,
  signal?: AbortSignal,
): Promise<Rollout> {
  let fromSequence = 0n;
  let last: Rollout | undefined;
  let reconnects = 0;
  for (;;) {
    try {
      for await (const step of session.apps.watchRollout({ app, rolloutId, fromSequence }, { signal })) {
        if (step.event) {
          fromSequence = step.event.sequence;
          onEvent(step.event);
        }
        if (step.rollout) last = step.rollout;
        reconnects = 0;
      }
      if (rolloutEnded(last)) return last!;
    } catch (error) {
      if (signal?.aborted || ConnectError.from(error).code !== Code.Unavailable) throw error;
    }
    if (++reconnects > MAX_RECONNECTS) {
      throw new CliFailure(`lost the progress of rollout ${rolloutId}; see berth releases --app ${app}`, ExitCode.unreachable);
    }
    await new Promise((resolve) => setTimeout(resolve, 500 * reconnects));
  }
}

/**
 * Follows the rollout a change started, printing each step, and ends the
 * command as `deploy` does: the final line on success, exit code 5 when the
 * rollout failed or was rolled back. `what` names the change ("deploy").
 */
export async function followChange(
  { out, json, signal }: { out: Output; json: boolean; signal: AbortSignal },
  session: ApiSession,
  app: string,
  change: { release: Release | undefined; rollout: Rollout },
  words: { what: string; done: (version: number) => string },
): Promise<void> {
  const { release, rollout } = change;
  out.note(release ? `Released v${release.version}; rolling out (${rollout.id}):` : `Rolling out (${rollout.id}):`);
  const final = await followRollout(
    session,
    app,
    rollout.id,
    (event) => {
      if (json) return;
      out.note(`  ${timeText(event.time)}  ${rolloutEventText(event)}`);
      for (const line of event.logTail) out.note(`      | ${line}`);
    },
    signal,
  );
  if (json) out.json({ release, rollout: final });
  const traffic = final.traffic && trafficText(final.traffic);
  if (final.canary && !json) out.line(`canary ${canaryText(final.canary, final.releaseVersion)}`);
  if (final.state === RolloutState.SUCCEEDED) {
    if (!json) {
      out.line(words.done(final.releaseVersion));
      if (traffic) out.line(`v${final.releaseVersion} live: ${traffic}`);
    }
    return;
  }
  const reason = [final.reason, final.message].filter(Boolean).join(": ");
  throw new CliFailure(
    `${words.what} of v${final.releaseVersion} ${rolloutStateText(final.state)}${reason ? ` (${reason})` : ""}${traffic ? `; ${traffic}` : ""}`,
    ExitCode.rolloutFailed,
  );
}

/** The --detach option of every command that starts a rollout. */
export const DETACH_OPTION: OptionSpec = { type: "boolean", description: "return once the rollout has started, without following it" };

/**
 * Ends a command that may have started a rollout: says what happened when it
 * started none (`unrolled`), returns at once with --detach, otherwise follows
 * it like `deploy` (steps, final figures, exit code 5 when it failed or was
 * rolled back).
 */
export async function reportChange(
  context: CommandContext,
  app: string,
  response: { release?: Release; rollout?: Rollout },
  words: { what: string; done: (version: number) => string; unrolled: string; detached: (rollout: Rollout) => string },
): Promise<void> {
  const { out, args, signal } = context;
  const { release, rollout } = response;
  if (rollout === undefined || args.options.detach) {
    if (args.json) out.json(response);
    else out.line(rollout === undefined ? words.unrolled : words.detached(rollout));
    return;
  }
  await followChange({ out, json: args.json, signal }, await context.session(), app, { release, rollout }, words);
}
