import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { canaryPolicyValues, checkCanaryPolicy, createFieldChecks, failedPrecondition, invalidArgument, notFound, routingClassOf } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import {
  CreateReleaseRequestSchema,
  CreateReleaseResponseSchema,
  RollbackRequestSchema,
  RollbackResponseSchema,
  UpdateConfigRequestSchema,
  UpdateConfigResponseSchema,
} from "@berth/proto/scheduler/v1/scheduler";
import type { SchedulerService } from "@berth/proto/scheduler/v1/scheduler";
import { createReleaseAndRollout, requireNoRollout, sameRelease } from "../release-creation.js";
import { setAppConfig } from "../store/apps.js";
import { findRelease, listReleases, sourceDirInUse } from "../store/releases.js";
import type { BuildPhaseName } from "../store/releases.js";
import { NODE_DEFAULT_PROCFILE, nodeBuildOf } from "../build/node-source.js";
import { releaseMessage, rolloutMessage } from "../views.js";
import { requireApp } from "./app-reads.js";
import { runOnce } from "./idempotency.js";
import { checkKubernetesNames } from "./kubernetes-names.js";
import { DEFAULT_PROCESSES } from "../release-commands.js";
import {
  IMAGE_ON_LOCAL_ENGINE,
  checkConfigChange,
  checkEnvironmentSize,
  checkReleaseRequest,
  checkRequestId,
  processesFrom,
  requireFields,
} from "./request-checks.js";
import { SHA256_DIGEST, parseImageReference } from "../image-reference.js";
import { resolveImageDigest } from "../registry-digest.js";
import { afterChange } from "./service-deps.js";
import type { SchedulerServiceDeps } from "./service-deps.js";
import { releaseRolloutTraffic } from "../store/traffic.js";
import { releaseCanaries } from "../store/canary.js";

type ReleaseHandlers = Pick<
  ServiceImpl<typeof SchedulerService>,
  "beginSourceUpload" | "uploadSourceChunk" | "createRelease" | "getRelease" | "listReleases" | "rollback" | "getConfig" | "updateConfig"
>;

/**
 * The digest a release of `image` is pinned to, so a rollback or a scale-up
 * runs the same bytes even after the tag moved: the reference's own digest,
 * or the one the client names, or what the registry says the tag points at
 * now. A registry that has no such image refuses the release (the kubelet
 * could not pull it either). One that cannot be asked (unreachable, or
 * credentials only the nodes hold) leaves the digest empty: the release
 * runs by tag until the kubernetes engine pins it to what its first pod pulled.
 */
async function imageDigest(deps: SchedulerServiceDeps, image: string, given: string, signal: AbortSignal): Promise<string> {
  const reference = parseImageReference(image);
  if (typeof reference === "string") throw invalidArgument("artifact.image", reference);
  if (reference.digest !== undefined) {
    if (given !== "" && given !== reference.digest) throw invalidArgument("artifact.digest", `differs from the image reference's digest ${reference.digest}`);
    return reference.digest;
  }
  if (given !== "") {
    if (!SHA256_DIGEST.test(given)) throw invalidArgument("artifact.digest", "must be sha256:<64 lower-case hex digits>");
    return given;
  }
  const { resolveImageDigests, insecureRegistries, registryTimeoutMs } = deps.config.kubernetes;
  const resolution = resolveImageDigests
    ? await resolveImageDigest(reference, { insecureHosts: insecureRegistries, timeoutMs: registryTimeoutMs, signal })
    : { state: "unavailable" as const, message: "registry lookups are off (BERTH_RESOLVE_IMAGE_DIGESTS=false)" };
  if (resolution.state === "resolved") return resolution.digest;
  if (resolution.state === "not-found") throw invalidArgument("artifact.image", resolution.message);
  deps.logger.warn("image digest unknown: the release runs by tag until its first pod reports the digest it pulled", { image, reason: resolution.message });
  return "";
}

const CANARY_ON_KUBERNETES =
  "canary: the kubernetes engine cannot split a process's requests between two releases yet (the local engine can); deploy without --canary";

/** The handlers of releases: source uploads, deploys, rollbacks and config changes (each a new release). */
export function createReleaseHandlers(deps: SchedulerServiceDeps): ReleaseHandlers {
  const { db, config, uploads } = deps;
  return {
    async beginSourceUpload(request) {
      const app = await requireApp(db, request.app);
      if (app.deleting) throw failedPrecondition(`app "${app.name}" is being deleted`);
      return uploads.begin(app.team, app.name, Number(request.sizeBytes), request.sha256);
    },

    async uploadSourceChunk(request) {
      requireFields({ ids: { upload_id: request.uploadId } });
      const { receivedBytes, complete } = await uploads.chunk(request.uploadId, Number(request.offset), request.data);
      return { receivedBytes: BigInt(receivedBytes), complete };
    },

    async createRelease(request, ctx) {
      const source = request.artifact?.source;
      const checks = createFieldChecks();
      checkReleaseRequest(checks, config.engine, {
        requestId: request.requestId,
        description: request.description,
        source,
        commit: request.artifact?.commit ?? "",
      });
      if (request.canary !== undefined) checkCanaryPolicy(checks, "canary", request.canary);
      checks.throwIfAny();
      if (config.engine === "local" && source?.case === "image") throw failedPrecondition(IMAGE_ON_LOCAL_ENGINE);
      if (request.canary !== undefined && config.engine === "kubernetes") throw failedPrecondition(CANARY_ON_KUBERNETES);
      const app = await requireApp(db, request.app);
      let sourceDir = "";
      let digest = request.artifact?.digest ?? "";
      let procfile = request.procfile;
      let buildPhase: BuildPhaseName = "none";
      if (source?.case === "sourceUploadId") {
        const upload = await uploads.completed(app.name, source.value, "artifact.source_upload_id");
        sourceDir = upload.sourceDir;
        digest = upload.sha256;
        const nodeBuild = await nodeBuildOf(sourceDir);
        if (procfile.trim() === "") {
          procfile = await readFile(join(sourceDir, "Procfile"), "utf8").catch(() => {
            if (nodeBuild !== undefined) return NODE_DEFAULT_PROCFILE;
            throw invalidArgument("procfile", "is empty and the source archive has no Procfile");
          });
        }
        // A source deployed again was built by its first release: building it again would pull node_modules from under the replicas running it.
        if (nodeBuild !== undefined && !(await sourceDirInUse(db, app.name, sourceDir))) buildPhase = "pending";
      }
      const processes = procfile.trim() === "" ? DEFAULT_PROCESSES : processesFrom(app.name, procfile);
      if (request.canary !== undefined && !processes.some((process) => routingClassOf(process.processType) === RoutingClass.WEB)) {
        throw failedPrecondition("canary: the release has no web type (web or *-web) whose requests a canary could take a share of");
      }
      // Refused here, before anything is stored or applied, rather than by the API server halfway through a rollout.
      if (config.engine === "kubernetes")
        await checkKubernetesNames(
          db,
          app,
          processes.map((process) => process.processType),
        );
      const commit = request.artifact?.commit || undefined;
      if (source?.case === "image") digest = await imageDigest(deps, source.value, digest, ctx.signal);
      const artifact = source?.case === "image" ? { image: source.value, digest, commit } : { sourceUploadId: source?.value ?? "", digest, commit };
      const response = await runOnce(
        db,
        { scope: `CreateRelease:${app.name}`, requestSchema: CreateReleaseRequestSchema, request, responseSchema: CreateReleaseResponseSchema },
        async (tx) => {
          const locked = await requireApp(tx, app.name, true);
          const created = await createReleaseAndRollout(
            tx,
            locked,
            { artifact, sourceDir, processes, config: locked.config, description: request.description, rollbackOfVersion: 0, buildPhase },
            { runReleasePhase: true, canary: request.canary && canaryPolicyValues(request.canary) },
          );
          return create(CreateReleaseResponseSchema, { release: releaseMessage(created.release, config.health), rollout: rolloutMessage(created.rollout) });
        },
      );
      // A replayed answer is given the version of now, which holds the first call's change too.
      return { ...response, appVersion: afterChange(deps, app.name) };
    },

    async getRelease(request) {
      requireFields({ versions: { version: request.version } });
      const app = await requireApp(db, request.app);
      const release = await findRelease(db, app.name, request.version);
      if (release === undefined) throw notFound(`app "${app.name}" has no release v${request.version}`);
      const traffic = (await releaseRolloutTraffic(db, app.name)).get(release.version);
      const canary = (await releaseCanaries(db, app.name)).get(release.version);
      return { release: releaseMessage(release, config.health, traffic, canary) };
    },

    async listReleases(request) {
      const app = await requireApp(db, request.app);
      const traffic = await releaseRolloutTraffic(db, app.name);
      const canaries = await releaseCanaries(db, app.name);
      return {
        releases: (await listReleases(db, app.name)).map((release) =>
          releaseMessage(release, config.health, traffic.get(release.version), canaries.get(release.version)),
        ),
      };
    },

    async rollback(request) {
      const checks = createFieldChecks();
      checkRequestId(checks, request.requestId);
      if (request.version !== 0) checks.releaseVersion("version", request.version);
      checks.throwIfAny();
      const app = await requireApp(db, request.app);
      const response = await runOnce(
        db,
        { scope: `Rollback:${app.name}`, requestSchema: RollbackRequestSchema, request, responseSchema: RollbackResponseSchema },
        async (tx) => {
          const locked = await requireApp(tx, app.name, true);
          const releases = await listReleases(tx, app.name);
          const target =
            request.version === 0
              ? releases.find((release) => release.version < locked.currentReleaseVersion && release.status === "succeeded")
              : releases.find((release) => release.version === request.version);
          if (target === undefined) {
            if (request.version === 0) throw failedPrecondition(`app "${app.name}" has no earlier release that served to roll back to`);
            throw notFound(`app "${app.name}" has no release v${request.version}`);
          }
          if (target.status === "failed" || target.status === "pending") {
            throw failedPrecondition(
              `v${target.version} never served (it ${target.status === "failed" ? "failed" : "is pending"}); roll back to a release that did`,
            );
          }
          if (target.artifact.sourceUploadId !== undefined && target.sourceDir === "") {
            throw failedPrecondition(
              `v${target.version}'s source was removed to save disk (the latest ${config.releasesKept} releases keep theirs, BERTH_SCHEDULER_RELEASES_KEPT); deploy it again instead`,
            );
          }
          // Like Heroku's, a rollback does not run the release phase again.
          const created = await createReleaseAndRollout(
            tx,
            locked,
            {
              artifact: target.artifact,
              sourceDir: target.sourceDir,
              processes: target.processes,
              config: target.config,
              description: `Rollback to v${target.version}`,
              rollbackOfVersion: target.version,
            },
            { runReleasePhase: false },
          );
          await setAppConfig(tx, app.name, target.config);
          return create(RollbackResponseSchema, { release: releaseMessage(created.release, config.health), rollout: rolloutMessage(created.rollout) });
        },
      );
      // A replayed answer is given the version of now, which holds the first call's change too.
      return { ...response, appVersion: afterChange(deps, app.name) };
    },

    async getConfig(request) {
      const app = await requireApp(db, request.app);
      return { config: app.config };
    },

    async updateConfig(request) {
      const checks = createFieldChecks();
      checkConfigChange(checks, request.set, request.unset);
      checkRequestId(checks, request.requestId);
      checks.throwIfAny();
      const app = await requireApp(db, request.app);
      const response = await runOnce(
        db,
        { scope: `UpdateConfig:${app.name}`, requestSchema: UpdateConfigRequestSchema, request, responseSchema: UpdateConfigResponseSchema },
        async (tx) => {
          const locked = await requireApp(tx, app.name, true);
          const next = { ...locked.config, ...request.set };
          for (const key of request.unset) delete next[key];
          const sizeChecks = createFieldChecks();
          checkEnvironmentSize(sizeChecks, next);
          sizeChecks.throwIfAny();
          const serving = locked.currentReleaseVersion > 0 ? await findRelease(tx, app.name, locked.currentReleaseVersion) : undefined;
          if (serving === undefined) {
            await requireNoRollout(tx, locked);
            await setAppConfig(tx, app.name, next);
            return create(UpdateConfigResponseSchema, {});
          }
          const keys = [...Object.keys(request.set), ...request.unset.map((key) => `-${key}`)].join(", ");
          const created = await createReleaseAndRollout(tx, locked, sameRelease(serving, { config: next, description: `Config change: ${keys}` }), {
            runReleasePhase: true,
          });
          await setAppConfig(tx, app.name, next);
          return create(UpdateConfigResponseSchema, { release: releaseMessage(created.release, config.health), rollout: rolloutMessage(created.rollout) });
        },
      );
      // A replayed answer is given the version of now, which holds the first call's change too.
      return { ...response, appVersion: afterChange(deps, app.name) };
    },
  };
}
