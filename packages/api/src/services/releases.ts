import type { ServiceImpl } from "@connectrpc/connect";
import { notFound, parseProcfile } from "@berth/kit";
import {
  type AppService,
  DeployRequestSchema,
  DeployResponseSchema,
  RollbackRequestSchema,
  RollbackResponseSchema,
  UpdateConfigRequestSchema,
  UpdateConfigResponseSchema,
} from "@berth/proto/api/v1/apps";
import { requireTeam } from "../auth.js";
import {
  checkCanaryPolicy,
  configKeyProblem,
  createFieldChecks,
  environmentBytes,
  gitCommitProblem,
  MAX_CONFIG_VALUE_BYTES,
  MAX_ENVIRONMENT_BYTES,
  MAX_PROCFILE_BYTES,
  MAX_RELEASE_DESCRIPTION,
} from "@berth/kit";
import type { FieldChecks } from "@berth/kit";
import { streamCall } from "../peers.js";
import { checkAppRequest, ownedApp, readOwnedApp, requireOwnedApp } from "./app-ownership.js";
import { runOnce } from "./idempotency.js";
import { wroteApp } from "./app-versions.js";
import { callOptions } from "./service-deps.js";
import type { ServiceDeps } from "./service-deps.js";

type ReleaseHandlers = Omit<
  ServiceImpl<typeof AppService>,
  "createApp" | "listApps" | "getApp" | "deleteApp" | "watchApps" | "getCanary" | "promoteCanary" | "abortCanary"
>;

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Config vars one UpdateConfig may set or unset. */
const MAX_CONFIG_KEYS_PER_CALL = 500;
const MAX_IMAGE_REFERENCE = 512;

function checkConfigKey(checks: FieldChecks, field: string, key: string): void {
  const problem = configKeyProblem(key);
  if (problem !== undefined) checks.add(field, problem);
}

/** AppService's releases: source uploads, deploys and their progress, releases, rollback and config vars. */
export function createReleaseHandlers(deps: ServiceDeps): ReleaseHandlers {
  const { scheduler } = deps.peers;
  const { sourceUploads, requestIds } = deps.store;

  async function requireUpload(team: string, app: string, uploadId: string, field: string, checks: FieldChecks): Promise<void> {
    const owner = await sourceUploads.ownerOf(uploadId);
    if (!owner || owner.team !== team || owner.app !== app) checks.add(field, `no source upload "${uploadId}" was started for app "${app}"`);
  }

  return {
    async beginSourceUpload(request, ctx) {
      const team = await requireOwnedApp(deps, ctx, request.app, (checks) => {
        if (request.sizeBytes === 0n) checks.add("size_bytes", "must be greater than 0");
        if (!SHA256_HEX.test(request.sha256)) checks.add("sha256", "must be the archive's sha256 as 64 lowercase hex digits");
      });
      const response = await scheduler.beginSourceUpload({ app: request.app, sizeBytes: request.sizeBytes, sha256: request.sha256 }, callOptions(deps, ctx));
      await sourceUploads.record(response.uploadId, { team, app: request.app });
      return { uploadId: response.uploadId, maxChunkBytes: response.maxChunkBytes };
    },
    async uploadSourceChunk(request, ctx) {
      const team = checkAppRequest(ctx, request.app, (checks) => {
        checks.required("upload_id", request.uploadId, 128);
        if (request.data.length === 0) checks.add("data", "must not be empty");
      });
      const owner = await sourceUploads.ownerOf(request.uploadId);
      if (!owner || owner.team !== team || owner.app !== request.app) throw notFound(`source upload "${request.uploadId}" not found`);
      const response = await scheduler.uploadSourceChunk({ uploadId: request.uploadId, offset: request.offset, data: request.data }, callOptions(deps, ctx));
      return { receivedBytes: response.receivedBytes, complete: response.complete };
    },
    async deploy(request, ctx) {
      const team = requireTeam(ctx);
      const checks = createFieldChecks();
      checks.dnsLabel("app", request.app);
      checks.requestId("request_id", request.requestId);
      checks.maxLength("description", request.description, MAX_RELEASE_DESCRIPTION);
      const source = request.artifact?.source;
      if (!source || source.case === undefined) checks.add("artifact", "must name a source_upload_id or an image");
      else if (source.case === "image") {
        checks.required("artifact.image", source.value, MAX_IMAGE_REFERENCE);
        if (/\s/.test(source.value)) checks.add("artifact.image", "must not contain spaces");
      } else {
        checks.required("artifact.source_upload_id", source.value, 128);
      }
      const commitProblem = gitCommitProblem(request.artifact?.commit ?? "");
      if (commitProblem !== undefined) checks.add("artifact.commit", commitProblem);
      if (request.canary !== undefined) checkCanaryPolicy(checks, "canary", request.canary);
      if (request.procfile.length > MAX_PROCFILE_BYTES) checks.add("procfile", `must be at most ${MAX_PROCFILE_BYTES} bytes`);
      else if (request.procfile.trim() !== "") {
        const procfile = parseProcfile(request.procfile);
        if (!procfile.ok) for (const problem of procfile.problems) checks.add("procfile", problem);
      }
      if (checks.violations.length === 0 && source?.case === "sourceUploadId") {
        await requireUpload(team, request.app, source.value, "artifact.source_upload_id", checks);
      }
      checks.throwIfAny();
      await ownedApp(deps, ctx, team, request.app);
      return runOnce(
        requestIds,
        { owner: team, method: "AppService/Deploy", requestSchema: DeployRequestSchema, request, responseSchema: DeployResponseSchema },
        async (requestId) => {
          const { release, rollout, appVersion } = await scheduler.createRelease(
            { app: request.app, artifact: request.artifact, procfile: request.procfile, description: request.description, requestId, canary: request.canary },
            callOptions(deps, ctx),
          );
          return { release, rollout, appVersion: wroteApp(deps, request.app, appVersion) };
        },
      );
    },
    async *watchRollout(request, ctx) {
      await requireOwnedApp(deps, ctx, request.app, (checks) => checks.required("rollout_id", request.rolloutId, 128));
      const steps = scheduler.watchRollout({ app: request.app, rolloutId: request.rolloutId, fromSequence: request.fromSequence }, streamCall(ctx));
      for await (const { event, rollout } of steps) yield { event, rollout };
    },
    async listReleases(request, ctx) {
      const response = await readOwnedApp(deps, ctx, request.app, (options) => scheduler.listReleases({ app: request.app }, options));
      return { releases: response.releases };
    },
    async getRelease(request, ctx) {
      const response = await readOwnedApp(
        deps,
        ctx,
        request.app,
        (options) => scheduler.getRelease({ app: request.app, version: request.version }, options),
        (checks) => checks.releaseVersion("version", request.version),
      );
      return { release: response.release };
    },
    async rollback(request, ctx) {
      const team = await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.requestId("request_id", request.requestId);
        // 0 means the release before the current one.
        if (request.version !== 0) checks.releaseVersion("version", request.version);
      });
      return runOnce(
        requestIds,
        { owner: team, method: "AppService/Rollback", requestSchema: RollbackRequestSchema, request, responseSchema: RollbackResponseSchema },
        async (requestId) => {
          const { release, rollout, appVersion } = await scheduler.rollback({ app: request.app, version: request.version, requestId }, callOptions(deps, ctx));
          return { release, rollout, appVersion: wroteApp(deps, request.app, appVersion) };
        },
      );
    },
    async getConfig(request, ctx) {
      const response = await readOwnedApp(deps, ctx, request.app, (options) => scheduler.getConfig({ app: request.app }, options));
      return { config: response.config };
    },
    async updateConfig(request, ctx) {
      const team = await requireOwnedApp(deps, ctx, request.app, (checks) => {
        checks.requestId("request_id", request.requestId);
        const setKeys = Object.keys(request.set);
        if (setKeys.length === 0 && request.unset.length === 0) checks.add("set", "must set or unset at least one config var");
        if (setKeys.length + request.unset.length > MAX_CONFIG_KEYS_PER_CALL) {
          checks.add("set", `must change at most ${MAX_CONFIG_KEYS_PER_CALL} config vars at once, got ${setKeys.length + request.unset.length}`);
        }
        for (const key of setKeys) {
          checkConfigKey(checks, `set[${key}]`, key);
          const bytes = Buffer.byteLength(request.set[key]!);
          if (bytes > MAX_CONFIG_VALUE_BYTES) checks.add(`set[${key}]`, `value must be at most ${MAX_CONFIG_VALUE_BYTES} bytes, got ${bytes}`);
        }
        // The whole environment after the change is the scheduler's to check; one call alone must not exceed it either.
        const setBytes = environmentBytes(request.set);
        if (setBytes > MAX_ENVIRONMENT_BYTES) checks.add("set", `the environment must be at most ${MAX_ENVIRONMENT_BYTES} bytes, got ${setBytes}`);
        request.unset.forEach((key, index) => {
          checkConfigKey(checks, `unset[${index}]`, key);
          if (key in request.set) checks.add(`unset[${index}]`, `"${key}" is both set and unset`);
        });
      });
      return runOnce(
        requestIds,
        {
          owner: team,
          method: "AppService/UpdateConfig",
          requestSchema: UpdateConfigRequestSchema,
          request,
          responseSchema: UpdateConfigResponseSchema,
        },
        async (requestId) => {
          const { release, rollout, appVersion } = await scheduler.updateConfig(
            { app: request.app, set: request.set, unset: request.unset, requestId },
            callOptions(deps, ctx),
          );
          return { release, rollout, appVersion: wroteApp(deps, request.app, appVersion) };
        },
      );
    },
  };
}
