import { randomBytes } from "node:crypto";
import { routingClassOf } from "@berth/kit";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { ReplicaStatus } from "../engine/engine.js";
import type { ProcessEndpointSet } from "../endpoints.js";
import { deleteApp, findApp, listApps } from "../store/apps.js";
import type { AppRecord } from "../store/apps.js";
import { listFormation } from "../store/formation.js";
import type { FormationRecord } from "../store/formation.js";
import { findRelease, setReleaseStatus } from "../store/releases.js";
import type { ReleaseRecord } from "../store/releases.js";
import {
  deleteReplica,
  insertReplica,
  listReplicas,
  saveReplicaStatus,
  setRetirePhase,
  stampRetireGeneration,
} from "../store/replicas.js";
import type { ReplicaRecord } from "../store/replicas.js";
import { findActiveRollout, setProgressDeadline, setRolloutState } from "../store/rollouts.js";
import type { RolloutRecord } from "../store/rollouts.js";
import { appKey, rolloutKey } from "./context.js";
import type { ControllerContext, ControllerDeps } from "./context.js";
import { createReleasePhase } from "./release-phase.js";
import { createRolloutBookkeeping } from "./rollout-bookkeeping.js";
import { maxSurgeFor, planType, typeConverged } from "./replica-plan.js";
import type { PlannedReplica } from "./replica-plan.js";
import { releaseTaskSpecFor, replicaSpecFor } from "./replica-specs.js";
import type { RolloutEventFields } from "./rollout-events.js";
import { createWorkQueue } from "./work-queue.js";

/** Drives every app towards its desired release and formation. */
export interface AppController {
  /** Finds the replicas of a previous run, then reconciles every app. */
  start(): Promise<void>;
  enqueue(app: string): void;
  /** Records a step of the app's rollout under way, if any. */
  recordAppEvent(app: string, kind: RolloutEventKind, fields: RolloutEventFields): Promise<void>;
  /** Stops reconciling; replicas keep running until the engine closes. */
  close(): Promise<void>;
}

const ROUTABLE = new Set([RoutingClass.WEB, RoutingClass.TCP, RoutingClass.RTC]);

/** What one pass over an app decided to look at again, and when. */
class Wake {
  at: number | undefined;
  soon(atMs: number): void {
    this.at = this.at === undefined ? atMs : Math.min(this.at, atMs);
  }
}

/**
 * The rollout controller: level-triggered and event-driven. Engine status
 * changes, API calls, acknowledgements and timers only enqueue an app; each
 * pass re-reads the app's state from the database and the engine and takes
 * the next steps. State lives in the database, so a restarted scheduler
 * adopts its replicas and carries on where it stopped.
 */
export function createAppController(deps: ControllerDeps): AppController {
  const { db, engine, endpoints, feed, config, logger } = deps;
  const queue = createWorkQueue(reconcile, logger, { maxBackoffMs: 30_000 });
  const ctx: ControllerContext = { ...deps, queue };
  const releasePhase = createReleasePhase(ctx, {
    start: (release) => engine.startReleaseTask(releaseTaskSpecFor(config, release)),
    resume: (release, runtimeId, deadline) => engine.resumeReleaseTask(releaseTaskSpecFor(config, release), runtimeId, deadline),
  });
  const appsWithRetirements = new Set<string>();
  const starting = new Set<string>();
  const stopping = new Map<string, Promise<void>>();
  const bookkeeping = createRolloutBookkeeping(ctx);
  const { ensureLease, releaseLease, event } = bookkeeping;
  let stopWatching: (() => void) | undefined;

  function displayedState(row: ReplicaRecord, live: ReplicaStatus): ReplicaState {
    const stoppingNow = live.state === ReplicaState.STOPPING || live.state === ReplicaState.STOPPED;
    return row.retirePhase !== "" && !stoppingNow ? ReplicaState.DRAINING : live.state;
  }

  /** Brings the stored replicas in line with the engine and records what happened to them. */
  async function syncReplicas(app: AppRecord, rows: ReplicaRecord[], rollout: RolloutRecord | undefined, targetVersion: number): Promise<ReplicaRecord[]> {
    const kept: ReplicaRecord[] = [];
    for (const row of rows) {
      const live = engine.replicaStatus(row.name);
      if (live === undefined) {
        if (starting.has(row.name) || stopping.has(row.name)) kept.push(row);
        else await deleteReplica(db, row.name);
        continue;
      }
      const state = displayedState(row, live);
      // A retiring replica takes no new traffic: it no longer counts as ready.
      const ready = live.ready && row.retirePhase === "";
      const changed =
        state !== row.state ||
        ready !== row.ready ||
        live.restarts !== row.restarts ||
        live.port !== row.port ||
        live.runtimeId !== row.runtimeId ||
        live.startedAt?.getTime() !== row.startedAt?.getTime();
      if (!changed) {
        kept.push(row);
        continue;
      }
      await saveReplicaStatus(db, { ...live, state, ready, startedAt: live.startedAt ?? null });
      if (ready && !row.ready) {
        await event(rollout, RolloutEventKind.REPLICA_HEALTHY, { processType: row.processType, replica: row.name, message: `healthy on port ${live.port}` });
        if (rollout !== undefined && row.releaseVersion === targetVersion) {
          await setProgressDeadline(db, rollout.id, new Date(Date.now() + config.progressDeadlineMs));
        }
      } else if (!ready && row.ready && row.retirePhase === "") {
        await event(rollout, RolloutEventKind.REPLICA_UNHEALTHY, { processType: row.processType, replica: row.name, message: `now ${ReplicaState[state]}` });
      } else if (state === ReplicaState.CRASHED && row.state !== ReplicaState.CRASHED && row.retirePhase === "") {
        const tail = engine.logs.tail({ app: app.name, replica: row.name }, 5).map((line) => line.text);
        await event(rollout, RolloutEventKind.REPLICA_UNHEALTHY, { processType: row.processType, replica: row.name, message: "crashed; restarting with backoff", logTail: tail });
      }
      kept.push({ ...row, state, ready, restarts: live.restarts, port: live.port, host: live.host, runtimeId: live.runtimeId });
    }
    return kept;
  }

  /** Publishes the healthy replicas of every routable type; returns the endpoint generation. */
  async function publishEndpoints(app: AppRecord, release: ReleaseRecord | undefined, rows: ReplicaRecord[]): Promise<number> {
    const sets = new Map<string, ProcessEndpointSet>();
    for (const process of release?.processes ?? []) {
      const routingClass = routingClassOf(process.processType);
      if (ROUTABLE.has(routingClass)) sets.set(process.processType, { processType: process.processType, routingClass, endpoints: [] });
    }
    for (const row of rows) {
      const routingClass = routingClassOf(row.processType);
      if (!ROUTABLE.has(routingClass)) continue;
      let set = sets.get(row.processType);
      if (set === undefined) sets.set(row.processType, (set = { processType: row.processType, routingClass, endpoints: [] }));
      if (row.retirePhase === "" && row.ready && row.state === ReplicaState.UP) {
        set.endpoints.push({ replica: row.name, host: row.host, port: row.port, zone: row.zone, releaseVersion: row.releaseVersion });
      }
    }
    return endpoints.publish(app.name, app.team, [...sets.values()]);
  }

  async function startReplica(
    app: AppRecord,
    release: ReleaseRecord,
    formation: FormationRecord | undefined,
    processType: string,
    slot: { index: number; zone: string },
    rollout: RolloutRecord | undefined,
  ): Promise<void> {
    const name = `${app.name}-${processType}-v${release.version}-${randomBytes(4).toString("hex").slice(0, 5)}`;
    const zone = slot.zone;
    await insertReplica(db, { name, app: app.name, processType, index: slot.index, releaseVersion: release.version, restartGeneration: formation?.restartGeneration ?? 0, zone });
    starting.add(name);
    try {
      const status = await engine.startReplica(replicaSpecFor(config, release, formation, { name, processType, index: slot.index, zone }));
      await saveReplicaStatus(db, { ...status, startedAt: status.startedAt ?? null });
      await event(rollout, RolloutEventKind.REPLICA_STARTED, { processType, replica: name, message: `started v${release.version} in ${zone}` });
    } catch (error) {
      logger.error("could not start replica", { replica: name, error });
      await deleteReplica(db, name);
    } finally {
      starting.delete(name);
    }
  }

  /** Moves every retiring replica of the app along: unrouted, acknowledged, drained, stopped. */
  async function advanceRetirements(app: AppRecord, rows: ReplicaRecord[], wake: Wake): Promise<void> {
    for (const row of rows) {
      if (row.retirePhase === "") continue;
      let phase = row.retirePhase;
      const routingClass = routingClassOf(row.processType);
      if (phase === "unrouted") {
        if (ROUTABLE.has(routingClass)) {
          const gate = await endpoints.ackStatus(row.retireGeneration || endpoints.generation, row.retirePhaseSince?.getTime() ?? Date.now());
          if (!gate.done) {
            wake.soon(gate.recheckAt);
            continue;
          }
        }
        phase = routingClass === RoutingClass.WEB && row.retireReason !== "app-deleted" ? "draining" : "stopping";
        await setRetirePhase(db, row.name, phase);
        row.retirePhaseSince = new Date();
      }
      if (phase === "draining") {
        const gate = endpoints.drainStatus(row.name, row.retirePhaseSince?.getTime() ?? Date.now());
        if (!gate.done) {
          wake.soon(gate.recheckAt);
          continue;
        }
        phase = "stopping";
        await setRetirePhase(db, row.name, phase);
      }
      if (phase === "stopping" && !stopping.has(row.name)) {
        const stopped = engine
          .stopReplica(row.name, config.stopGraceMs)
          .then(async () => {
            await deleteReplica(db, row.name);
            endpoints.forgetReplica(row.name);
            const current = await findActiveRollout(db, app.name);
            await event(current, RolloutEventKind.REPLICA_STOPPED, { processType: row.processType, replica: row.name, message: `stopped (${row.retireReason})` });
          })
          .catch((error: unknown) => logger.error("could not stop replica", { replica: row.name, error }))
          .finally(() => {
            stopping.delete(row.name);
            queue.enqueue(app.name);
          });
        stopping.set(row.name, stopped);
      }
    }
  }

  /** Where the app should be: the release to run and the types a rollout covers. */
  async function desiredRelease(app: AppRecord, rollout: RolloutRecord | undefined): Promise<ReleaseRecord | undefined> {
    if (app.deleting) return undefined;
    let version = app.currentReleaseVersion;
    if (rollout?.state === "rolling") version = rollout.releaseVersion;
    if (rollout?.state === "rolling_back") version = rollout.previousReleaseVersion;
    return version > 0 ? findRelease(db, app.name, version) : undefined;
  }

  /** The progress deadline passed: report the first new replica that is not healthy. */
  async function missedDeadline(app: AppRecord, rollout: RolloutRecord, rows: ReplicaRecord[]): Promise<void> {
    const seconds = Math.round(config.progressDeadlineMs / 1000);
    const unhealthy = rows.find((row) => row.releaseVersion === rollout.releaseVersion && !row.ready && row.retirePhase === "");
    await bookkeeping.missedDeadline(app, rollout, {
      message: `no replica became healthy for ${seconds} s${unhealthy ? ` (${unhealthy.name} is ${ReplicaState[unhealthy.state]})` : ""}`,
      logTail: unhealthy ? engine.logs.tail({ app: app.name, replica: unhealthy.name }, 20).map((line) => line.text) : [],
      processType: unhealthy?.processType,
      replica: unhealthy?.name,
    });
  }

  async function reconcile(name: string): Promise<number | undefined> {
    const app = await findApp(db, name);
    if (app === undefined) {
      await releaseLease(name);
      return undefined;
    }
    const wake = new Wake();
    let rollout = await findActiveRollout(db, name);
    if (rollout !== undefined && app.deleting) {
      await bookkeeping.finish(app, rollout, "failed", { reason: "APP_DELETED", message: "the app is being deleted" });
      rollout = undefined;
    }
    if (rollout !== undefined) {
      if (!(await ensureLease(name))) return Date.now() + config.leaseTtlMs / 3;
      wake.soon(Date.now() + config.leaseTtlMs / 3);
    } else {
      await releaseLease(name);
    }

    if (rollout !== undefined && (rollout.state === "pending" || rollout.state === "release_phase")) {
      const release = await findRelease(db, name, rollout.releaseVersion);
      if (release === undefined || !(await releasePhase.advance(rollout, release))) {
        return wake.at;
      }
      await db.transaction(async (tx) => {
        await setRolloutState(tx, rollout!.id, "rolling");
        await setReleaseStatus(tx, name, rollout!.releaseVersion, "rolling_out");
        await setProgressDeadline(tx, rollout!.id, new Date(Date.now() + config.progressDeadlineMs));
      });
      feed.notify(rolloutKey(rollout.id));
      rollout = await findActiveRollout(db, name);
    }

    const target = await desiredRelease(app, rollout);
    const formation = new Map((await listFormation(db, name)).map((entry) => [entry.processType, entry]));
    let rows = await syncReplicas(app, await listReplicas(db, name), rollout, target?.version ?? 0);
    rollout = rollout && (await findActiveRollout(db, name));

    // Plan each type towards the target: its processes, at the formation's scale.
    const desiredTypes = new Map<string, number>();
    for (const process of target?.processes ?? []) {
      if (routingClassOf(process.processType) === RoutingClass.RELEASE) continue;
      desiredTypes.set(process.processType, formation.get(process.processType)?.replicas ?? 0);
    }
    const types = new Set([...desiredTypes.keys(), ...rows.map((row) => row.processType)]);
    const isCurrent = (row: ReplicaRecord) =>
      target !== undefined && row.releaseVersion === target.version && row.restartGeneration === (formation.get(row.processType)?.restartGeneration ?? 0);
    const plannedOf = (processType: string): PlannedReplica[] =>
      rows
        .filter((row) => row.processType === processType && row.retirePhase === "")
        .map((row) => ({ name: row.name, index: row.index, current: isCurrent(row), ready: row.ready, zone: row.zone }));

    const starts: Promise<void>[] = [];
    let retired = 0;
    for (const processType of types) {
      const desired = desiredTypes.get(processType) ?? 0;
      const plan = planType({ desired, maxSurge: maxSurgeFor(desired, config.maxSurgePercent), zones: desired >= 2 ? config.zones : config.zones.slice(0, 1), replicas: plannedOf(processType) });
      for (const slot of plan.start) starts.push(startReplica(app, target!, formation.get(processType), processType, slot, rollout));
      for (const { name: replica, reason } of plan.retire) {
        const why = app.deleting ? "app-deleted" : desiredTypes.has(processType) ? reason : "removed-from-procfile";
        await setRetirePhase(db, replica, "unrouted", { reason: why, generation: 0 });
        await event(rollout, RolloutEventKind.REPLICA_DRAINING, { processType, replica, message: `leaving the endpoints (${why})` });
        rows = rows.map((row) =>
          row.name === replica ? { ...row, retirePhase: "unrouted", retireReason: why, retireGeneration: 0, retirePhaseSince: new Date() } : row,
        );
        retired += 1;
      }
    }
    const generation = await publishEndpoints(app, target, rows);
    if (retired > 0) {
      await stampRetireGeneration(db, name, generation);
      rows = rows.map((row) => (row.retirePhase === "unrouted" && row.retireGeneration === 0 ? { ...row, retireGeneration: generation } : row));
    }
    await advanceRetirements(app, rows, wake);
    if (rows.some((row) => row.retirePhase !== "")) appsWithRetirements.add(name);
    else appsWithRetirements.delete(name);
    await Promise.all(starts);

    if (app.deleting) {
      const left = await listReplicas(db, name);
      if (left.length === 0 && stopping.size === 0 && starting.size === 0) {
        await deleteApp(db, name);
        await endpoints.removeApp(name);
        await releaseLease(name);
        feed.notify(appKey(name));
        logger.info("app deleted", { app: name });
        return undefined;
      }
      return wake.at;
    }

    if (rollout !== undefined && (rollout.state === "rolling" || rollout.state === "rolling_back")) {
      const scope = rollout.processTypes.length > 0 ? rollout.processTypes : [...types];
      const converged =
        starts.length === 0 &&
        scope.every((processType) => typeConverged({ desired: desiredTypes.get(processType) ?? 0, replicas: plannedOf(processType) }, 0));
      if (converged) {
        if (rollout.state === "rolling") {
          await bookkeeping.finish(app, rollout, "succeeded", { message: `v${rollout.releaseVersion} serves` });
        } else {
          await bookkeeping.finish(app, rollout, "rolled_back", { reason: rollout.reason, message: `rolled back: v${rollout.previousReleaseVersion} serves` });
        }
      } else if (rollout.progressDeadlineAt !== null) {
        if (Date.now() >= rollout.progressDeadlineAt.getTime()) await missedDeadline(app, rollout, rows);
        else wake.soon(rollout.progressDeadlineAt.getTime());
      }
    }
    return wake.at;
  }

  /** After a restart: adopt the replicas that still run, forget those that do not. */
  async function recover(): Promise<void> {
    const releases = new Map<string, ReleaseRecord | undefined>();
    const formations = new Map<string, Map<string, FormationRecord>>();
    const adoptedNames = new Set<string>();
    for (const row of await listReplicas(db)) {
      const releaseKey = `${row.app}/${row.releaseVersion}`;
      if (!releases.has(releaseKey)) releases.set(releaseKey, await findRelease(db, row.app, row.releaseVersion));
      if (!formations.has(row.app)) formations.set(row.app, new Map((await listFormation(db, row.app)).map((entry) => [entry.processType, entry])));
      const release = releases.get(releaseKey);
      const adopted =
        release !== undefined
          ? await engine.adoptReplica(replicaSpecFor(config, release, formations.get(row.app)!.get(row.processType), row), row.runtimeId)
          : undefined;
      if (adopted === undefined) {
        logger.info("replica from before the restart is gone", { replica: row.name });
        await deleteReplica(db, row.name);
      } else {
        adoptedNames.add(row.name);
        logger.info("adopted replica", { replica: row.name, port: adopted.port });
      }
    }
    const strays = await engine.stopStrays(adoptedNames, config.stopGraceMs);
    if (strays.length > 0) logger.warn("stopped replicas left by a previous run that were never recorded", { replicas: strays });
  }

  /**
   * Publishes every app's endpoints as stored, before WatchEndpoints is
   * served: a router that connects right after a restart must get a snapshot
   * that holds every route, not the empty set of a scheduler that has not
   * reconciled yet (reconciles may wait on a lease or a release phase).
   */
  async function publishStoredEndpoints(): Promise<void> {
    for (const app of await listApps(db)) {
      const release = await desiredRelease(app, await findActiveRollout(db, app.name));
      await publishEndpoints(app, release, await listReplicas(db, app.name));
    }
  }

  return {
    async start() {
      await recover();
      await publishStoredEndpoints();
      stopWatching = engine.onReplicaChange((status) => queue.enqueue(status.app));
      endpoints.onProgress(() => {
        for (const app of appsWithRetirements) queue.enqueue(app);
      });
      for (const app of await listApps(db)) queue.enqueue(app.name);
    },
    enqueue(app) {
      queue.enqueue(app);
    },
    async recordAppEvent(app, kind, fields) {
      await event(await findActiveRollout(db, app), kind, fields);
    },
    async close() {
      stopWatching?.();
      await queue.close();
      await releasePhase.settled();
      await Promise.all(stopping.values());
      await bookkeeping.releaseAllLeases();
    },
  };
}
