import { CoreV1Api, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import type { KubeConfig, KubernetesObject, V1Deployment, V1Job, V1Pod } from "@kubernetes/client-node";
import { LABEL, applyObjectSet, isKubernetesNotFound, labelSelector, watchCollection } from "@berth/kit";
import type { ApplyObjectSetResult, Logger } from "@berth/kit";
import type { ReleaseTaskResult } from "../engine.js";
import { appHistoryPruneScopes, appObjects, appPruneScopes, namespaceOf, releaseJobFor, teamNamespaceObject } from "./manifests.js";
import type { AppManifestInput, AppScope, ManifestSettings } from "./manifests.js";
import { pruneReleaseSecrets } from "./release-secrets.js";
import { componentsAwaitingReplacement, keepingComponents } from "./legacy-workloads.js";
import { WORKLOAD_KINDS, jobOutcome } from "./rollout-status.js";
import type { JobOutcome, WorkloadRollout } from "./rollout-status.js";

/** Options of createKubernetesDeployer. */
export interface KubernetesDeployerOptions {
  kubeConfig: KubeConfig;
  /** Namespace, field manager and the shape of every object (see manifestSettingsFrom). */
  settings: ManifestSettings;
  logger: Logger;
  /** How long past the release timeout a Job the cluster never finished is waited for (default 30 s). */
  releaseGraceMs?: number;
  /** How many of the release pod's last log lines a result carries (default 20). */
  logTailLines?: number;
}

/** How a release Job ended. */
export interface ReleaseJobResult extends ReleaseTaskResult {
  jobName: string;
  succeeded: boolean;
  /** Empty on success; RELEASE_PHASE_FAILED or RELEASE_PHASE_TIMEOUT. */
  reason: string;
  message: string;
}

/** What applying an app's objects touched. */
export interface AppApplyResult extends ApplyObjectSetResult {
  /**
   * Process types whose workload an older berth named `<app>-<type>` is kept
   * until its replacement has rolled out (see legacy-workloads.ts): apply
   * again once it has, and that workload is pruned.
   */
  awaitingReplacement: string[];
}

/** How waiting for an app's Deployments ended. */
export type RolloutOutcome =
  | { ok: true }
  | {
      ok: false;
      reason: "PROGRESS_DEADLINE_EXCEEDED";
      message: string;
      /** The Deployments and StatefulSets whose rollout had not finished. */
      pending: string[];
    };

/** Options of waitForRollout. */
export interface WaitForRolloutOptions {
  app: string;
  /** The app's namespace (its team's). */
  namespace: string;
  /** Give up once no replica became available for this long; default the settings' progress deadline. */
  progressDeadlineMs?: number;
  signal?: AbortSignal;
}

/** Runs apps on Kubernetes: the release Job, the app's objects, their rollout. */
export interface KubernetesDeployer {
  /**
   * Applies the release's Job (a no-op when it exists: a restarted scheduler
   * finds the same Job and never runs it twice) and waits until it completes,
   * fails, or `deadline` (default: release timeout plus grace) passes, in
   * which case the Job is deleted. Throws when the release has no `release` command.
   */
  runReleaseJob(input: AppManifestInput, options?: { deadline?: Date; signal?: AbortSignal }): Promise<ReleaseJobResult>;
  /**
   * Applies the team's namespace (once per run), then the
   * app's config Secret, Deployments, Services, PDBs and HPAs, and prunes
   * those it no longer has, and the config Secrets of releases nothing can
   * bring back (pruneReleaseSecrets). Refuses, before applying anything, when an
   * object of that name exists and belongs to another app or to no berth app.
   */
  applyApp(input: AppManifestInput): Promise<AppApplyResult>;
  /** Resolves once every Deployment and StatefulSet of the app has rolled out, or reports the progress deadline. */
  waitForRollout(options: WaitForRolloutOptions): Promise<RolloutOutcome>;
  /** Deletes every object of the app, release Jobs and config Secrets included. */
  deleteApp(scope: AppScope): Promise<ApplyObjectSetResult>;
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("aborted", "AbortError");
}

/** Creates the deployer; every method is event-driven through watches, none polls. */
export function createKubernetesDeployer(options: KubernetesDeployerOptions): KubernetesDeployer {
  const { kubeConfig, settings, logger } = options;
  const client = KubernetesObjectApi.makeApiClient(kubeConfig);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const fieldManager = settings.managedBy;
  const releaseGraceMs = options.releaseGraceMs ?? 30_000;
  const logTailLines = options.logTailLines ?? 20;
  const preparedTeams = new Set<string>();

  /** The team's labelled namespace, applied once per run (a no-op when already there). */
  async function prepareTeam(team: string): Promise<void> {
    if (preparedTeams.has(team)) return;
    await applyObjectSet({ client, fieldManager, objects: [teamNamespaceObject(team, settings)] });
    preparedTeams.add(team);
  }

  /**
   * Refuses to take over an object of the same name that another app (or no
   * berth app) owns: apply would silently make it ours. Names carry a hash of
   * app and type, so this only fires for a tcp Service's hostname (which the
   * API refuses first) or an object someone else made: defence in depth.
   */
  async function refuseForeignObjects(app: string, objects: readonly KubernetesObject[]): Promise<void> {
    for (const object of objects) {
      let live: KubernetesObject;
      try {
        live = await client.read({
          apiVersion: object.apiVersion!,
          kind: object.kind!,
          metadata: { name: object.metadata!.name!, namespace: object.metadata!.namespace! },
        });
      } catch (error) {
        if (isKubernetesNotFound(error)) continue;
        throw error;
      }
      const labels = live.metadata?.labels ?? {};
      if (labels[LABEL.name] !== app || labels[LABEL.managedBy] !== fieldManager) {
        const owner = labels[LABEL.managedBy] === fieldManager && labels[LABEL.name] ? `app "${labels[LABEL.name]}"` : "no berth app";
        throw new Error(
          `${object.kind} ${object.metadata!.namespace}/${object.metadata!.name} exists and belongs to ${owner}, not to app "${app}"; berth will not take it over`,
        );
      }
    }
  }

  /**
   * Before berth stops applying an autoscaled Deployment's replicas, another
   * field manager takes the field over with its current value: dropping a
   * field berth alone owned would remove it, and the API server would reset
   * the Deployment to 1 replica until the HPA acts (the documented handover
   * for server-side apply).
   */
  async function handOverAutoscaledReplicas(objects: KubernetesObject[]): Promise<void> {
    for (const object of objects) {
      if (object.kind !== "Deployment" || (object as V1Deployment).spec?.replicas !== undefined) continue;
      let live: V1Deployment;
      try {
        live = await client.read<V1Deployment>({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: object.metadata!.name!, namespace: object.metadata!.namespace! },
        });
      } catch (error) {
        if (isKubernetesNotFound(error)) continue;
        throw error;
      }
      const replicas = live.spec?.replicas;
      const ownsReplicas = live.metadata?.managedFields?.some(
        (entry) =>
          entry.manager === fieldManager &&
          entry.operation === "Apply" &&
          (entry.fieldsV1 as Record<string, Record<string, unknown>> | undefined)?.["f:spec"]?.["f:replicas"] !== undefined,
      );
      if (replicas === undefined || !ownsReplicas) continue;
      const handover = {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: live.metadata!.name!, namespace: object.metadata!.namespace! },
        spec: { replicas },
      };
      await client.patch(handover, undefined, undefined, `${fieldManager}-replicas-handover`, false, PatchStrategy.ServerSideApply);
      logger.info("replicas handed over to the autoscaler", { deployment: live.metadata!.name, replicas });
    }
  }

  /** Waits for the Job (applied just before) to reach a terminal condition or disappear, for the deadline or the signal. */
  function awaitJob(namespace: string, name: string, deadline: Date, signal: AbortSignal | undefined): Promise<JobOutcome | "deadline" | "deleted"> {
    return new Promise((resolve, reject) => {
      const settle = () => {
        watch.stop();
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const finish = (outcome: JobOutcome | "deadline" | "deleted") => {
        settle();
        resolve(outcome);
      };
      const onAbort = () => {
        settle();
        reject(abortError(signal!));
      };
      const watch = watchCollection({
        kubeConfig,
        apiVersion: "batch/v1",
        kind: "Job",
        plural: "jobs",
        namespace,
        fieldSelector: `metadata.name=${name}`,
        logger,
        onChange(objects) {
          const job = objects.get(name) as V1Job | undefined;
          if (job === undefined) return finish("deleted");
          const outcome = jobOutcome(job);
          if (outcome !== undefined) finish(outcome);
        },
      });
      const timer = setTimeout(() => finish("deadline"), Math.max(0, deadline.getTime() - Date.now()));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The release pod's exit code and last log lines, as far as the cluster still has them. */
  async function releasePodReport(namespace: string, jobName: string): Promise<{ exitCode: number | null; logTail: string[] }> {
    try {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${jobName}` });
      const pod: V1Pod | undefined = pods.items
        .sort((a, b) => (a.metadata?.creationTimestamp?.getTime() ?? 0) - (b.metadata?.creationTimestamp?.getTime() ?? 0))
        .at(-1);
      if (pod === undefined) return { exitCode: null, logTail: [] };
      const terminated = pod.status?.containerStatuses?.find((status) => status.name === "release")?.state?.terminated;
      const log = await core.readNamespacedPodLog({ namespace, name: pod.metadata!.name!, container: "release", tailLines: logTailLines });
      return {
        exitCode: terminated?.exitCode ?? null,
        logTail: log
          .split("\n")
          .filter((line) => line !== "")
          .slice(-logTailLines),
      };
    } catch (error) {
      logger.warn("could not read the release pod's logs", { job: jobName, error });
      return { exitCode: null, logTail: [] };
    }
  }

  return {
    async runReleaseJob(input, runOptions = {}) {
      const job = releaseJobFor(input, settings);
      if (job === undefined) throw new Error(`release v${input.release.version} of ${input.release.app} has no release command`);
      const jobName = job.metadata!.name!;
      const namespace = namespaceOf(input.team, settings);
      const deadline = runOptions.deadline ?? new Date(Date.now() + settings.releaseTimeoutMs + releaseGraceMs);
      await prepareTeam(input.team);
      // The release's config Secret first: the Job's pod reads it.
      const [secret] = appObjects(input, settings);
      await refuseForeignObjects(input.release.app, [secret!, job]);
      const applied = await applyObjectSet({ client, fieldManager, objects: [secret!, job] });
      logger.info(applied.applied.some((name) => name.startsWith("Job/")) ? "release job created" : "release job found", { job: jobName });
      const outcome = await awaitJob(namespace, jobName, deadline, runOptions.signal);
      const report = await releasePodReport(namespace, jobName);
      if (outcome === "deadline") {
        // Gone for good: a Job left behind might still run the release after the deploy was given up.
        await client.delete(job, undefined, undefined, undefined, undefined, "Background").catch((error: unknown) => {
          if (!isKubernetesNotFound(error)) logger.warn("could not delete the timed-out release job", { job: jobName, error });
        });
        return {
          jobName,
          succeeded: false,
          timedOut: true,
          exitCode: null,
          logTail: report.logTail,
          reason: "RELEASE_PHASE_TIMEOUT",
          message: `the release Job did not finish by ${deadline.toISOString()}`,
        };
      }
      if (outcome === "deleted") {
        return {
          jobName,
          succeeded: false,
          timedOut: false,
          exitCode: null,
          logTail: report.logTail,
          reason: "RELEASE_PHASE_FAILED",
          message: "the release Job was deleted before it finished",
        };
      }
      if (outcome.succeeded)
        return {
          jobName,
          succeeded: true,
          timedOut: false,
          exitCode: report.exitCode ?? 0,
          logTail: report.logTail,
          reason: "",
          message: "the release Job completed",
        };
      return {
        jobName,
        succeeded: false,
        timedOut: outcome.timedOut,
        exitCode: report.exitCode,
        logTail: report.logTail,
        reason: outcome.timedOut ? "RELEASE_PHASE_TIMEOUT" : "RELEASE_PHASE_FAILED",
        message: `the release Job failed (${outcome.reason}${outcome.message ? `: ${outcome.message}` : ""})`,
      };
    },

    async applyApp(input) {
      const objects = appObjects(input, settings);
      await prepareTeam(input.team);
      await refuseForeignObjects(input.release.app, objects);
      await handOverAutoscaledReplicas(objects);
      const scope = { app: input.release.app, namespace: namespaceOf(input.team, settings) };
      const awaitingReplacement = await componentsAwaitingReplacement(client, scope, fieldManager, objects);
      const prune = keepingComponents(appPruneScopes(scope, settings), awaitingReplacement);
      const result = await applyObjectSet({ client, fieldManager, objects, prune });
      for (const name of await pruneReleaseSecrets(client, scope, input.release.version, settings)) result.pruned.push(`Secret/${scope.namespace}/${name}`);
      if (result.applied.length + result.pruned.length > 0)
        logger.info("app objects applied", { app: input.release.app, applied: result.applied, pruned: result.pruned, awaitingReplacement });
      return { ...result, awaitingReplacement };
    },

    waitForRollout(waitOptions) {
      const deadlineMs = waitOptions.progressDeadlineMs ?? settings.progressDeadlineMs;
      const { signal } = waitOptions;
      return new Promise((resolve, reject) => {
        const bestProgress = new Map<string, number>();
        // By kind, once its watch has listed: each workload's rollout.
        const listed = new Map<string, Map<string, WorkloadRollout>>();
        let pending: string[] = [];
        let timer: NodeJS.Timeout | undefined;
        const settle = () => {
          for (const watch of watches) watch.stop();
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        };
        const finish = (outcome: RolloutOutcome) => {
          settle();
          resolve(outcome);
        };
        const rollouts = () => new Map([...listed.values()].flatMap((states) => [...states]));
        const missedDeadline = (cause: string) => {
          const states = rollouts();
          const unlisted = WORKLOAD_KINDS.filter(({ kind }) => !listed.has(kind)).map(({ plural }) => plural);
          const waitingFor = [
            ...pending.map((name) => `${name} (${states.get(name)?.summary ?? "not found"})`),
            ...(unlisted.length > 0 ? [`the app's ${unlisted.join(" and ")}, which the cluster never listed`] : []),
          ];
          finish({ ok: false, reason: "PROGRESS_DEADLINE_EXCEEDED", message: `${cause}: ${waitingFor.join(", ")}`, pending });
        };
        const armDeadline = () => {
          clearTimeout(timer);
          timer = setTimeout(() => missedDeadline(`no replica became available for ${Math.round(deadlineMs / 1000)} s`), deadlineMs);
        };
        const onAbort = () => {
          settle();
          reject(abortError(signal!));
        };
        const changed = () => {
          const states = rollouts();
          pending = [...states].filter(([, rollout]) => !rollout.done).map(([name]) => name);
          if (listed.size < WORKLOAD_KINDS.length) return;
          if (pending.length === 0) return finish({ ok: true });
          if ([...states.values()].some((rollout) => rollout.deadlineExceeded)) return missedDeadline("the cluster reports ProgressDeadlineExceeded");
          let progressed = false;
          for (const [name, rollout] of states) {
            if (rollout.progress > (bestProgress.get(name) ?? 0)) progressed = true;
            bestProgress.set(name, Math.max(rollout.progress, bestProgress.get(name) ?? 0));
          }
          if (progressed) armDeadline();
        };
        const watches = WORKLOAD_KINDS.map(({ kind, plural, rollout }) =>
          watchCollection({
            kubeConfig,
            apiVersion: "apps/v1",
            kind,
            plural,
            namespace: waitOptions.namespace,
            labelSelector: labelSelector({ [LABEL.name]: waitOptions.app, [LABEL.managedBy]: fieldManager }),
            logger,
            onChange(objects) {
              listed.set(kind, new Map([...objects.values()].map((object) => [object.metadata!.name!, rollout(object)])));
              changed();
            },
          }),
        );
        armDeadline();
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
      });
    },

    async deleteApp(scope) {
      const result = await applyObjectSet({
        client,
        fieldManager,
        objects: [],
        prune: [...appPruneScopes(scope, settings), ...appHistoryPruneScopes(scope, settings)],
      });
      logger.info("app objects deleted", { app: scope.app, pruned: result.pruned });
      return result;
    },
  };
}
