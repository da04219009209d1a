import { CoreV1Api } from "@kubernetes/client-node";
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { LABEL, failedPrecondition, isKubernetesNotFound, routingClassOf } from "@berth/kit";
import type { Database, Logger } from "@berth/kit";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { SchedulerConfig } from "../../config.js";
import type { EndpointHub } from "../../endpoints.js";
import { findApp } from "../../store/apps.js";
import type { AppRecord } from "../../store/apps.js";
import { listAutoscaleRules, listFormation } from "../../store/formation.js";
import { pinReleaseDigest } from "../../store/releases.js";
import type { ReleaseRecord } from "../../store/releases.js";
import { SHA256_DIGEST } from "../../image-reference.js";
import type { RtcEnvironment } from "../../rtc-environment.js";
import { deleteReplica, listReplicas, saveObservedReplica } from "../../store/replicas.js";
import type { ObservedReplica, ReplicaRecord } from "../../store/replicas.js";
import { setProgressDeadline } from "../../store/rollouts.js";
import type { RolloutRecord } from "../../store/rollouts.js";
import type { ConvergeOutcome, ConvergePass, Engine, EngineHooks, ReleaseTaskRunner, StallReport } from "../engine.js";
import { createClusterState } from "./cluster-state.js";
import type { KubernetesDeployer } from "./kubernetes-deployer.js";
import type { AppManifestInput, AppScope } from "./manifests.js";
import { manifestSettingsFrom, namespaceOf, releaseJobName } from "./manifests.js";
import { createKubernetesCommandRunner } from "./kubernetes-commands.js";
import { createPodLogs } from "./pod-logs.js";
import { createPodExec } from "./pod-exec.js";
import { appEndpointSets, appPods, podReplicas, replicaChanged } from "./pod-replicas.js";

/** How often an app's unchanged objects are applied again anyway, repairing what was changed behind berth's back. */
const APPLY_RESYNC_MS = 60_000;

/** The ready replicas of each type, in one comparable text: WatchApps shows a change of it. */
function readyCounts(replicas: readonly ObservedReplica[]): string {
  const counts = new Map<string, number>();
  for (const replica of replicas) if (replica.ready) counts.set(replica.processType, (counts.get(replica.processType) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).join(";");
}

/** What the kubernetes engine is built from. */
export interface KubernetesEngineDeps {
  db: Database;
  deployer: KubernetesDeployer;
  /** The cluster the deployer applies to: its pods, EndpointSlices and logs are read back from there. */
  kubeConfig: KubeConfig;
  endpoints: EndpointHub;
  config: SchedulerConfig;
  logger: Logger;
  /** The TURN allocator's variables of `*-rtc` replicas (ports, token and secret made sure of first). */
  rtcEnvironment: RtcEnvironment;
}

/**
 * The kubernetes engine: each pass server-side applies the objects of the
 * release an app should run (a no-op when nothing changed). The release
 * phase is a Job (found again, never duplicated, after a restart); the
 * Deployments roll themselves (RollingUpdate, probes) while the engine
 * watches them against the progress deadline in the background; a rollback
 * is the controller applying the last stable release. The autoscaler is the
 * cluster's HorizontalPodAutoscaler.
 *
 * Cluster state comes back in through informers on the pods and
 * EndpointSlices of each team namespace: a change enqueues the apps it
 * touched, and their next pass stores the pods as replicas (`ps`, ready
 * counts), publishes the ready addresses as endpoints, and records the
 * rollout's progress as pods start, become ready, crash or go.
 */
export function createKubernetesEngine(deps: KubernetesEngineDeps): Engine {
  const { db, deployer, config, logger, endpoints, kubeConfig } = deps;
  const settings = manifestSettingsFrom(config);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const state = createClusterState({ kubeConfig, managedBy: settings.managedBy, logger });
  // By node: its zone label (empty when it has none); nodes do not move between zones.
  const zones = new Map<string, string>();
  // By app: what was last applied and when, so that a pass woken by a pod change does not apply everything again.
  const applied = new Map<string, { fingerprint: string; at: number }>();
  const shownReadyCounts = new Map<string, string>();
  const namespaceOfApp = async (name: string) => {
    const app = await findApp(db, name);
    return app && namespaceOf(app.team, settings);
  };
  // By rollout (watchKey), or `replacing:<app>`: the background watches of the apps' workloads.
  const watching = new Map<string, { controller: AbortController; done: Promise<void> }>();
  // By app: how the watch of its rollout (in a given state) ended, until a pass reports it.
  const outcomes = new Map<string, { key: string; outcome: ConvergeOutcome }>();
  const watchKey = (rollout: RolloutRecord) => `${rollout.id}:${rollout.state}`;
  const scopeOf = (app: AppRecord): AppScope => ({ app: app.name, namespace: namespaceOf(app.team, settings) });
  let hooks: EngineHooks | undefined;
  // By app, then rtc type: the route token of its per-replica hostnames, which the published endpoints carry to the router.
  const routeTokens = new Map<string, Map<string, string>>();

  async function manifestInput(app: AppRecord, release: ReleaseRecord): Promise<AppManifestInput> {
    const formation = await listFormation(db, app.name);
    // Replica 01's variables: the StatefulSet's pods derive their own number and hostname from their ordinal.
    const rtc = new Map<string, Record<string, string>>();
    const tokens = new Map<string, string>();
    for (const { processType } of release.processes) {
      if (routingClassOf(processType) !== RoutingClass.RTC) continue;
      const replicas = formation.find((entry) => entry.processType === processType)?.replicas ?? 0;
      const setup = await deps.rtcEnvironment({ team: app.team, app: app.name, processType, index: 0, replicas: Math.max(1, replicas) });
      rtc.set(processType, setup.env);
      tokens.set(processType, setup.routeToken);
    }
    routeTokens.set(app.name, tokens);
    return { team: app.team, release, formation, autoscaleRules: await listAutoscaleRules(db, app.name), rtc };
  }

  const runJob = async (release: ReleaseRecord, deadline?: Date) => {
    const app = await findApp(db, release.app);
    if (app === undefined) throw new Error(`app "${release.app}" is gone`);
    const result = deployer.runReleaseJob(await manifestInput(app, release), deadline ? { deadline } : {});
    return {
      runtimeId: releaseJobName(release.app, release.version),
      result: result.then((outcome) => ({ ...outcome, exitCode: outcome.succeeded ? 0 : outcome.exitCode === 0 ? null : outcome.exitCode })),
    };
  };
  // Applying the Job is idempotent: resuming finds the Job a previous run created.
  const releaseTasks: ReleaseTaskRunner = { start: (release) => runJob(release), resume: (release, _runtimeId, deadline) => runJob(release, deadline) };

  /** Watches the app's Deployments for the rollout in the background; its outcome enqueues the app again. */
  function watchRollout(app: AppRecord, rollout: RolloutRecord): void {
    const key = watchKey(rollout);
    if (watching.has(key)) return;
    const controller = new AbortController();
    const remaining = Math.max(1000, (rollout.progressDeadlineAt?.getTime() ?? Date.now() + config.progressDeadlineMs) - Date.now());
    const done = deployer
      .waitForRollout({ app: app.name, namespace: scopeOf(app).namespace, progressDeadlineMs: remaining, signal: controller.signal })
      .then((outcome) => {
        if (controller.signal.aborted) return;
        outcomes.set(app.name, {
          key,
          outcome: outcome.ok ? { state: "converged" } : { state: "stalled", stall: { message: outcome.message, logTail: [] } },
        });
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) logger.error("watching the rollout failed", { app: app.name, rollout: rollout.id, error });
      })
      .finally(() => {
        if (watching.get(key)?.controller === controller) watching.delete(key);
        hooks?.enqueue(app.name);
      });
    watching.set(key, { controller, done });
  }

  /** Once the app's workloads have rolled out, a pass applies again: it prunes those of an older name (legacy-workloads.ts). */
  function awaitReplacement(app: AppRecord): void {
    const key = `replacing:${app.name}`;
    if (watching.has(key)) return;
    const controller = new AbortController();
    const done = deployer
      .waitForRollout({ app: app.name, namespace: scopeOf(app).namespace, signal: controller.signal })
      .then(
        () => undefined,
        (error: unknown) => {
          if (!controller.signal.aborted) logger.error("watching renamed workloads' replacements failed", { app: app.name, error });
        },
      )
      .finally(() => {
        watching.delete(key);
        if (!controller.signal.aborted) hooks?.enqueue(app.name);
      });
    watching.set(key, { controller, done });
  }

  /** The zones of the nodes the pods run on, read once per node. */
  async function learnZones(pods: readonly V1Pod[]): Promise<void> {
    for (const node of new Set(pods.map((pod) => pod.spec?.nodeName).filter((name): name is string => name !== undefined))) {
      if (zones.has(node)) continue;
      try {
        const found = await core.readNode({ name: node });
        zones.set(node, found.metadata?.labels?.["topology.kubernetes.io/zone"] ?? "");
      } catch (error) {
        // Shown without a zone this time; the next pass asks again.
        logger.debug("could not read the pod's node", { node, error });
      }
    }
  }

  /** The last lines of a pod's app container; of the one that ended, when it crashed and waits to restart. */
  async function podLogTail(namespace: string, replica: ObservedReplica, lines: number): Promise<string[]> {
    try {
      const text = await core.readNamespacedPodLog({
        namespace,
        name: replica.name,
        container: replica.processType,
        tailLines: lines,
        previous: replica.restarts > 0 && !replica.ready,
      });
      return text.split("\n").filter((line) => line !== "");
    } catch (error) {
      logger.debug("no log for pod", { pod: replica.name, error });
      return [];
    }
  }

  /** The rollout steps one pod's change amounts to. */
  async function recordProgress(pass: ConvergePass, namespace: string, before: ReplicaRecord | undefined, after: ObservedReplica): Promise<void> {
    const { processType, name: replica } = after;
    const ofTarget = after.releaseVersion === pass.target?.version;
    if (before === undefined && ofTarget) {
      await pass.event(RolloutEventKind.REPLICA_STARTED, {
        processType,
        replica,
        message: `pod of v${after.releaseVersion} created${after.zone ? ` in ${after.zone}` : ""}`,
      });
    }
    if (after.ready && before?.ready !== true) {
      await pass.event(RolloutEventKind.REPLICA_HEALTHY, { processType, replica, message: `ready at ${after.host}:${after.port}` });
      // The rollout moves: its deadline (also after a restart of the scheduler) counts from here.
      if (pass.rollout !== undefined && ofTarget) await setProgressDeadline(db, pass.rollout.id, new Date(Date.now() + config.progressDeadlineMs));
    } else if (after.lastExitReason !== "" && after.lastExitReason !== before?.lastExitReason && !after.ready) {
      await pass.event(RolloutEventKind.REPLICA_UNHEALTHY, {
        processType,
        replica,
        reason: after.lastExitReason,
        message: `${after.lastExitReason}${after.restarts > 0 ? ` after ${after.restarts} restarts` : ""}`,
        logTail: await podLogTail(namespace, after, 5),
      });
    } else if (!after.ready && before?.ready === true && after.state !== ReplicaState.STOPPING) {
      await pass.event(RolloutEventKind.REPLICA_UNHEALTHY, { processType, replica, message: "no longer ready" });
    }
    if (after.state === ReplicaState.STOPPING && before?.state !== ReplicaState.STOPPING) {
      await pass.event(RolloutEventKind.REPLICA_DRAINING, { processType, replica, message: "terminating: left the endpoints" });
    }
  }

  /**
   * Stores the app's pods as its replicas and publishes their ready
   * addresses; undefined until the namespace's informers have listed once
   * (an empty view before that would wipe every replica).
   */
  async function syncReplicas(pass: ConvergePass, namespace: string): Promise<ObservedReplica[] | undefined> {
    const { app } = pass;
    if (!state.synced(namespace)) return undefined;
    const pods = appPods(state.pods(namespace), app.name);
    await learnZones(pods);
    const observed = podReplicas(pods, (node) => zones.get(node) || undefined);
    const stored = new Map((await listReplicas(db, app.name)).map((replica) => [replica.name, replica]));
    for (const replica of observed) {
      const before = stored.get(replica.name);
      stored.delete(replica.name);
      if (before !== undefined && !replicaChanged(before, replica)) continue;
      await saveObservedReplica(db, replica);
      await recordProgress(pass, namespace, before, replica);
    }
    for (const gone of stored.values()) {
      await deleteReplica(db, gone.name);
      await pass.event(RolloutEventKind.REPLICA_STOPPED, { processType: gone.processType, replica: gone.name, message: "pod gone" });
    }
    const processTypes = (pass.target?.processes ?? []).map((process) => process.processType);
    const scale = new Map((await listFormation(db, app.name)).map((entry) => [entry.processType, entry.replicas]));
    await endpoints.publish(app.name, app.team, appEndpointSets(processTypes, scale, observed, state.slices(namespace), routeTokens.get(app.name)));
    const counts = readyCounts(observed);
    if (shownReadyCounts.get(app.name) !== counts) {
      shownReadyCounts.set(app.name, counts);
      hooks?.appChanged(app.name);
    }
    return observed;
  }

  /**
   * A release of a tag whose digest the registry could not tell is pinned to
   * the digest its first pod pulled (the `name@sha256:…` image ID the runtime
   * reports; a bare image ID is a config digest, not a pullable one, and is
   * ignored). The next pass applies the pinned image: the pods roll once
   * more onto the same bytes, and scale-ups and rollbacks run them for good.
   */
  async function pinPulledDigest(app: AppRecord, release: ReleaseRecord, namespace: string): Promise<void> {
    const pods = appPods(state.pods(namespace), app.name).filter((pod) => pod.metadata?.labels?.[LABEL.version] === `v${release.version}`);
    for (const pod of pods) {
      for (const status of pod.status?.containerStatuses ?? []) {
        const digest = status.imageID.slice(status.imageID.lastIndexOf("@") + 1);
        if (!status.imageID.includes("@") || !SHA256_DIGEST.test(digest)) continue;
        if (await pinReleaseDigest(db, app.name, release.version, digest)) {
          logger.info("release pinned to the digest its first pod pulled", { app: app.name, version: release.version, digest, pod: pod.metadata?.name });
          hooks?.enqueue(app.name);
        }
        return;
      }
    }
  }

  /** Applies the app's objects when they changed since the last apply, and now and then anyway to repair drift. */
  async function applyIfChanged(app: AppRecord, target: ReleaseRecord): Promise<void> {
    const input = await manifestInput(app, target);
    const fingerprint = JSON.stringify(input);
    const last = applied.get(app.name);
    if (last?.fingerprint === fingerprint && Date.now() - last.at < APPLY_RESYNC_MS) return;
    applied.delete(app.name);
    const result = await deployer.applyApp(input);
    // Workloads of an older name still wait for their replacement: the passes apply again until one prunes them.
    if (result.awaitingReplacement.length === 0) applied.set(app.name, { fingerprint, at: Date.now() });
    else awaitReplacement(app);
  }

  /** The stall as the cluster explains it: the first pod of the new release that is not ready, why, and its last lines. */
  async function explainStall(namespace: string, stall: StallReport, replicas: readonly ObservedReplica[] | undefined, version: number): Promise<StallReport> {
    const stuck = (replicas ?? []).filter((replica) => replica.releaseVersion === version && !replica.ready);
    const culprit = stuck.find((replica) => replica.lastExitReason !== "") ?? stuck[0];
    if (culprit === undefined) return stall;
    const why = culprit.lastExitReason !== "" ? culprit.lastExitReason : ReplicaState[culprit.state];
    return {
      message: `${stall.message}; pod ${culprit.name} is ${why}`,
      logTail: await podLogTail(namespace, culprit, 20),
      processType: culprit.processType,
      replica: culprit.name,
    };
  }

  return {
    releaseTasks,
    commands: createKubernetesCommandRunner({
      kubeConfig,
      settings,
      manifestInput: async (release) => {
        const app = await findApp(db, release.app);
        if (app === undefined) throw failedPrecondition(`app "${release.app}" is gone`);
        return manifestInput(app, release);
      },
      exec: createPodExec({ kubeConfig, namespaceOf: namespaceOfApp, timeoutMs: config.commandTimeoutMs }),
      logger,
    }),
    logs: createPodLogs({ kubeConfig, state, namespaceOf: namespaceOfApp, managedBy: settings.managedBy, logger }),
    async deleteReplica(app, replica) {
      try {
        // The pod's grace period applies (preStop, then SIGTERM); its ReplicaSet creates the replacement.
        await core.deleteNamespacedPod({ namespace: scopeOf(app).namespace, name: replica.name });
      } catch (error) {
        if (!isKubernetesNotFound(error)) throw error;
      }
    },
    async start(engineHooks) {
      hooks = engineHooks;
      state.onChange((_namespace, apps) => {
        for (const app of apps) engineHooks.enqueue(app);
      });
    },
    async converge(pass) {
      const { app, target, rollout } = pass;
      const namespace = scopeOf(app).namespace;
      state.follow(namespace);
      if (app.deleting) {
        applied.delete(app.name);
        await deployer.deleteApp(scopeOf(app));
        await endpoints.removeApp(app.name);
        return { state: "converged" };
      }
      if (target !== undefined) await applyIfChanged(app, target);
      else if (rollout === undefined) {
        applied.delete(app.name);
        await deployer.deleteApp(scopeOf(app));
      }
      const replicas = await syncReplicas(pass, namespace);
      if (target?.artifact.image && target.artifact.digest === "") await pinPulledDigest(app, target, namespace);
      if (rollout === undefined || target === undefined) return { state: "converged" };
      const ended = outcomes.get(app.name);
      if (ended?.key === watchKey(rollout)) {
        const { outcome } = ended;
        // The Deployments' watch can be ahead of the pods' one: the rollout ends once its pods' readiness is recorded too.
        const podsBehind = replicas?.some((replica) => !replica.ready && replica.state !== ReplicaState.STOPPING);
        if (outcome.state === "converged" && podsBehind) return { state: "progressing" };
        outcomes.delete(app.name);
        return outcome.state === "stalled" && outcome.stall !== undefined
          ? { ...outcome, stall: await explainStall(namespace, outcome.stall, replicas, target.version) }
          : outcome;
      }
      watchRollout(app, rollout);
      return { state: "progressing" };
    },
    async forgetApp(app) {
      outcomes.delete(app);
      applied.delete(app);
      routeTokens.delete(app);
      shownReadyCounts.delete(app);
      await endpoints.removeApp(app);
    },
    async close() {
      state.close();
      for (const { controller } of watching.values()) controller.abort();
      await Promise.all([...watching.values()].map(({ done }) => done));
    },
  };
}
