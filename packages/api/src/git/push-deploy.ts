import { createHash, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { MAX_RELEASE_DESCRIPTION, rolloutEventText } from "@berth/kit";
import { RolloutEventKind, RolloutState } from "@berth/proto/type/v1/release";
import type { Rollout, RolloutEvent } from "@berth/proto/type/v1/release";
import { recordOutcome } from "../audit.js";
import type { ServiceDeps } from "../services/service-deps.js";
import { gitEnvironment, runGit } from "./git-command.js";
import type { PushHandler } from "./push-hooks.js";

/** The branches whose push deploys, in order of preference when one push updates both. */
const DEPLOYED_REFS = ["refs/heads/main", "refs/heads/master"];
const DELETED = /^0+$/;
/** What the audit log calls a deploy by push. */
const AUDITED_AS = "git push";
/** How often, and how patiently, a dropped progress stream is resumed. */
const MAX_RECONNECTS = 10;
const RECONNECT_DELAY_MS = 500;

function ended(rollout: Rollout | undefined): boolean {
  return rollout !== undefined && [RolloutState.SUCCEEDED, RolloutState.FAILED, RolloutState.ROLLED_BACK].includes(rollout.state);
}

/**
 * Deploys a push to main (or master): archives the pushed commit from git's
 * quarantine, uploads it as a source archive, makes a release recording the
 * commit, and follows its rollout (build, release phase, replicas) line by
 * line. The hook exits 0 only when the rollout succeeded, so `git push`
 * fails, and the ref is not updated, when the build, the release phase or
 * the rollout did.
 */
export function createPushDeployer(deps: ServiceDeps): PushHandler {
  const { scheduler } = deps.peers;
  const unary = (signal: AbortSignal) => ({ signal, timeoutMs: deps.callTimeoutMs });

  /**
   * Follows a rollout to its end; a stream that drops before it (the
   * scheduler restarting) is resumed after the last step seen, so a push
   * outlives a scheduler restart without showing a step twice. Resolves with
   * the last state seen, ended or not.
   */
  async function followRollout(app: string, rolloutId: string, onEvent: (event: RolloutEvent) => void, signal: AbortSignal): Promise<Rollout | undefined> {
    let fromSequence = 0n;
    let last: Rollout | undefined;
    for (let attempt = 0; attempt <= MAX_RECONNECTS && !ended(last); attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS * attempt));
      try {
        for await (const step of scheduler.watchRollout({ app, rolloutId, fromSequence }, { signal, timeoutMs: 0 })) {
          if (step.event !== undefined) {
            fromSequence = step.event.sequence;
            onEvent(step.event);
          }
          last = step.rollout ?? last;
          attempt = 0;
        }
      } catch (error) {
        if (signal.aborted || ConnectError.from(error).code !== Code.Unavailable) throw error;
      }
    }
    return last;
  }

  return async (push, request, say, signal) => {
    const update = DEPLOYED_REFS.map((ref) => request.updates.find((candidate) => candidate.ref === ref)).find((found) => found !== undefined);
    if (update === undefined) {
      say(`berth: ${request.updates.map((u) => u.ref).join(", ")} stored; only a push to main or master deploys`);
      return 0;
    }
    const branch = update.ref.slice("refs/heads/".length);
    if (DELETED.test(update.newId)) {
      say(`berth: ${branch} deleted; nothing deploys and the current release keeps serving`);
      return 0;
    }
    const short = update.newId.slice(0, 7);
    const requestId = randomUUID();
    // Like a Deploy call, a push is audited once, with the outcome of making the release.
    let audited = false;
    const audit = async (error?: unknown) => {
      audited = true;
      const call = { tokenId: push.tokenId, team: push.team, rpc: AUDITED_AS, app: push.app, requestId };
      await recordOutcome(deps.store.audit, deps.logger, call, error);
    };
    try {
      const git = gitEnvironment({}, { GIT_DIR: push.repository, ...request.objectEnvironment });
      const archive = await runGit(["archive", "--format=tar.gz", update.newId], git, signal);
      const subject = (await runGit(["show", "--no-patch", "--format=%s", update.newId], git, signal)).toString("utf8").trim();
      say(`berth: deploying ${short} (${branch}) to ${push.app}`);
      const sha256 = createHash("sha256").update(archive).digest("hex");
      const upload = await scheduler.beginSourceUpload({ app: push.app, sizeBytes: BigInt(archive.length), sha256 }, unary(signal));
      await deps.store.sourceUploads.record(upload.uploadId, { team: push.team, app: push.app });
      for (let offset = 0; offset < archive.length; offset += upload.maxChunkBytes) {
        const data = archive.subarray(offset, offset + upload.maxChunkBytes);
        await scheduler.uploadSourceChunk({ uploadId: upload.uploadId, offset: BigInt(offset), data }, unary(signal));
      }
      const { release, rollout } = await scheduler.createRelease(
        {
          app: push.app,
          artifact: { source: { case: "sourceUploadId", value: upload.uploadId }, digest: sha256, commit: update.newId },
          procfile: "",
          description: `${short} ${subject}`.slice(0, MAX_RELEASE_DESCRIPTION),
          requestId,
        },
        unary(signal),
      );
      await audit();
      if (!release || !rollout) {
        say(`berth: release v${release?.version ?? "?"} made; nothing to roll out`);
        return 0;
      }
      say(`berth: release v${release.version}, rolling out (${rollout.id}):`);
      const last = await followRollout(
        push.app,
        rollout.id,
        (event) => {
          if (event.kind !== RolloutEventKind.BUILD_OUTPUT) say(`  ${rolloutEventText(event)}`);
          for (const line of event.logTail) say(`      | ${line}`);
        },
        signal,
      );
      if (!ended(last)) {
        say(`berth: lost the progress of rollout ${rollout.id}; see berth releases --app ${push.app}`);
        return 1;
      }
      if (last!.state === RolloutState.SUCCEEDED) {
        say(`berth: deployed ${short} to ${push.app} as v${last!.releaseVersion}`);
        return 0;
      }
      const reason = [last!.reason, last!.message].filter(Boolean).join(": ");
      say(`berth: deploy of v${last!.releaseVersion} failed${reason ? ` (${reason})` : ""}; the push is refused`);
      return 1;
    } catch (error) {
      if (signal.aborted) return 1;
      const connectError = ConnectError.from(error);
      if (connectError.code === Code.Unknown || connectError.code === Code.Internal) deps.logger.error("a push deploy failed", { app: push.app, error });
      if (!audited) await audit(connectError);
      say(`berth: the deploy was refused: ${connectError.rawMessage}`);
      return 1;
    }
  };
}
