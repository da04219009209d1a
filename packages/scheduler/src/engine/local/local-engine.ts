import { randomBytes } from "node:crypto";
import type { Database, Logger } from "@berth/kit";
import { routingClassOf } from "@berth/kit";
import { ReplicaState, RoutingClass } from "@berth/proto/type/v1/process";
import { RolloutEventKind } from "@berth/proto/type/v1/release";
import type { SchedulerConfig } from "../../config.js";
import type { EndpointHub, ProcessEndpointSet } from "../../endpoints.js";
import { desiredReleaseVersion } from "../../desired-release.js";
import { findApp, listApps } from "../../store/apps.js";
import type { AppRecord } from "../../store/apps.js";
import { listFormation } from "../../store/formation.js";
import type { FormationRecord } from "../../store/formation.js";
import { findRelease } from "../../store/releases.js";
import type { ReleaseRecord } from "../../store/releases.js";
import {
  deleteReplica,
  insertReplica,
  listReplicas,
  saveReplicaStatus,
  saveRtcRouteToken,
  setRetirePhase,
  stampRetireGeneration,
} from "../../store/replicas.js";
import type { ReplicaRecord } from "../../store/replicas.js";
import { findActiveRollout, setProgressDeadline } from "../../store/rollouts.js";
import { canaryActive } from "../../store/canary.js";
import type { RolloutRecord } from "../../store/rollouts.js";
import type { ConvergeOutcome, ConvergePass, Engine, EngineHooks, StallReport } from "../engine.js";
import { maxSurgeFor, planRollingUpdate, rollingUpdateDone } from "./rolling-update.js";
import type { PlannedReplica } from "./rolling-update.js";
import { buildTaskSpecFor, releaseTaskSpecFor, replicaSpecFor } from "./replica-specs.js";
import type { RtcEnvironment } from "../../rtc-environment.js";
import type { ReplicaStatus, ReplicaSupervisor } from "./replica-supervisor.js";
import { createLocalCommandRunner } from "./local-commands.js";
import { retireMessage } from "./retire-messages.js";

/** What the local engine is built from. */
export interface LocalEngineDeps {
  db: Database;
  /** Runs the replicas and release tasks on this machine. */
  supervisor: ReplicaSupervisor;
  endpoints: EndpointHub;
  config: SchedulerConfig;
  logger: Logger;
  /** The TURN variables of replicas of `*-rtc` processes. */
  rtcEnvironment: RtcEnvironment;
}

const ROUTABLE = new Set([RoutingClass.WEB, RoutingClass.TCP, RoutingClass.RTC]);

/** The ready replicas of each type that are not retiring, as the formation view counts them, in one comparable text. */
function readyCounts(rows: readonly ReplicaRecord[]): string {
  const counts = new Map<string, number>();
  for (const row of rows) if (row.ready && row.retirePhase === "") counts.set(row.processType, (counts.get(row.processType) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).join(";");
}

/**
 * The web types of a canary's release that are scaled up: those it runs a
 * replica of and takes a share of (a type scaled to zero serves nothing, and
 * a canary of it would serve its whole share alone).
 */
function canaryTypesOf(release: ReleaseRecord, formation: ReadonlyMap<string, FormationRecord>): string[] {
  return release.processes
    .map((process) => process.processType)
    .filter((processType) => routingClassOf(processType) === RoutingClass.WEB && (formation.get(processType)?.replicas ?? 0) > 0);
}

/** What one pass over an app decided to look at again, and when. */
class Wake {
  at: number | undefined;
  soon(atMs: number): void {
    this.at = this.at === undefined ? atMs : Math.min(this.at, atMs);
  }
}

/**
 * The local engine: a rolling update replica by replica on this machine.
 * Each pass syncs the stored replicas with the supervisor, plans every
 * process type towards the target (`planRollingUpdate`), starts what the plan starts,
 * and retires what it retires through the endpoint protocol: unrouted,
 * acknowledged by every router, drained, stopped. State lives in the
 * database, so a restarted scheduler adopts its replicas and carries on.
 */
export function createLocalEngine(deps: LocalEngineDeps): Engine {
  const { db, supervisor, endpoints, config, logger, rtcEnvironment } = deps;
  const appsWithRetirements = new Set<string>();
  const starting = new Set<string>();
  const stopping = new Map<string, Promise<void>>();
  // By app: its ready counts as WatchApps last showed them.
  const shownReadyCounts = new Map<string, string>();
  let hooks: EngineHooks | undefined;
  let stopWatching: (() => void) | undefined;

  function displayedState(row: ReplicaRecord, live: ReplicaStatus): ReplicaState {
    const stoppingNow = live.state === ReplicaState.STOPPING || live.state === ReplicaState.STOPPED;
    return row.retirePhase !== "" && !stoppingNow ? ReplicaState.DRAINING : live.state;
  }

  /** Brings the stored replicas in line with the supervisor and records what happened to them. */
  async function syncReplicas(pass: ConvergePass, rows: ReplicaRecord[]): Promise<ReplicaRecord[]> {
    const { app, rollout, event } = pass;
    const kept: ReplicaRecord[] = [];
    for (const row of rows) {
      const live = supervisor.replicaStatus(row.name);
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
        live.lastExitReason !== row.lastExitReason ||
        live.isolation !== row.isolation ||
        live.startedAt?.getTime() !== row.startedAt?.getTime();
      if (!changed) {
        kept.push(row);
        continue;
      }
      await saveReplicaStatus(db, { ...live, state, ready, startedAt: live.startedAt ?? null });
      if (ready && !row.ready) {
        await event(RolloutEventKind.REPLICA_HEALTHY, { processType: row.processType, replica: row.name, message: `healthy on port ${live.port}` });
        if (rollout !== undefined && row.releaseVersion === pass.target?.version) {
          await setProgressDeadline(db, rollout.id, new Date(Date.now() + config.progressDeadlineMs));
        }
      } else if (!ready && row.ready && row.retirePhase === "") {
        await event(RolloutEventKind.REPLICA_UNHEALTHY, { processType: row.processType, replica: row.name, message: `now ${ReplicaState[state]}` });
      } else if (state === ReplicaState.CRASHED && row.state !== ReplicaState.CRASHED && row.retirePhase === "") {
        const tail = supervisor.logs.tail({ app: app.name, replica: row.name }, 5).map((line) => line.text);
        const why = live.lastExitReason === "OOMKilled" ? "OOMKilled (used more memory than its pod size allows)" : "crashed";
        await event(RolloutEventKind.REPLICA_UNHEALTHY, {
          processType: row.processType,
          replica: row.name,
          message: `${why}; restarting with backoff`,
          logTail: tail,
        });
      }
      kept.push({
        ...row,
        state,
        ready,
        restarts: live.restarts,
        port: live.port,
        host: live.host,
        runtimeId: live.runtimeId,
        isolation: live.isolation,
        lastExitReason: live.lastExitReason,
      });
    }
    return kept;
  }

  /**
   * Publishes the healthy replicas of every routable type, with the replica
   * count of each (`formation`, by type), an rtc type's route token (the
   * one its replicas that are not retiring were started with) and, during a
   * canary, its share of each web type it runs; returns the endpoint generation.
   */
  async function publishEndpoints(
    app: AppRecord,
    target: ReleaseRecord | undefined,
    formation: ReadonlyMap<string, FormationRecord>,
    rows: ReplicaRecord[],
    canary: ConvergePass["canary"],
  ): Promise<number> {
    const sets = new Map<string, ProcessEndpointSet>();
    const setOf = (processType: string, routingClass: RoutingClass): ProcessEndpointSet => {
      let set = sets.get(processType);
      if (set === undefined) {
        set = { processType, routingClass, endpoints: [], replicas: formation.get(processType)?.replicas ?? 0, rtcRouteToken: "" };
        if (canary !== undefined && canaryTypesOf(canary.release, formation).includes(processType)) {
          set.canary = { releaseVersion: canary.release.version, percent: canary.percent };
        }
        sets.set(processType, set);
      }
      return set;
    };
    for (const process of target?.processes ?? []) {
      const routingClass = routingClassOf(process.processType);
      if (ROUTABLE.has(routingClass)) setOf(process.processType, routingClass);
    }
    for (const row of rows) {
      const routingClass = routingClassOf(row.processType);
      if (!ROUTABLE.has(routingClass)) continue;
      const set = setOf(row.processType, routingClass);
      if (row.retirePhase !== "") continue;
      if (row.rtcRouteToken !== "") set.rtcRouteToken = row.rtcRouteToken;
      if (row.ready && row.state === ReplicaState.UP) {
        set.endpoints.push({
          replica: row.name,
          host: row.host,
          port: row.port,
          zone: row.zone,
          releaseVersion: row.releaseVersion,
          replicaIndex: row.index + 1,
        });
      }
    }
    return endpoints.publish(app.name, app.team, [...sets.values()]);
  }

  async function startReplica(
    pass: ConvergePass,
    release: ReleaseRecord,
    formation: FormationRecord | undefined,
    processType: string,
    slot: { index: number; zone: string },
  ): Promise<void> {
    const app = pass.app.name;
    const name = `${app}-${processType}-v${release.version}-${randomBytes(4).toString("hex").slice(0, 5)}`;
    const zone = slot.zone;
    await insertReplica(db, {
      name,
      app,
      processType,
      index: slot.index,
      releaseVersion: release.version,
      restartGeneration: formation?.restartGeneration ?? 0,
      zone,
    });
    starting.add(name);
    try {
      const spec = replicaSpecFor(config, release, formation, { name, processType, index: slot.index, zone }, pass.app.team);
      if (spec.routingClass === RoutingClass.RTC) {
        const rtc = await rtcEnvironment({ team: pass.app.team, app, processType, index: slot.index, replicas: formation?.replicas ?? 1 });
        spec.env = { ...spec.env, ...rtc.env };
        await saveRtcRouteToken(db, name, rtc.routeToken);
      }
      const status = await supervisor.startReplica(spec);
      await saveReplicaStatus(db, { ...status, startedAt: status.startedAt ?? null });
      await pass.event(RolloutEventKind.REPLICA_STARTED, { processType, replica: name, message: `started v${release.version} in ${zone}` });
    } catch (error) {
      logger.error("could not start replica", { replica: name, error });
      await deleteReplica(db, name);
    } finally {
      starting.delete(name);
    }
  }

  /** Moves every retiring replica of the app along: unrouted, acknowledged, drained, stopped. */
  async function advanceRetirements(app: string, rows: ReplicaRecord[], wake: Wake): Promise<void> {
    for (const row of rows) {
      if (row.retirePhase === "") continue;
      // Out of its virtual address as soon as it retires (kube-proxy drops a terminating endpoint too);
      // connections already made keep flowing to it through conntrack while it drains.
      supervisor.retireReplica(row.name);
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
        const stopped = supervisor
          .stopReplica(row.name, config.stopGraceMs)
          .then(async () => {
            await deleteReplica(db, row.name);
            endpoints.forgetReplica(row.name);
            await hooks?.recordAppEvent(app, RolloutEventKind.REPLICA_STOPPED, {
              processType: row.processType,
              replica: row.name,
              message: retireMessage("stopped", row.retireReason),
            });
          })
          .catch((error: unknown) => logger.error("could not stop replica", { replica: row.name, error }))
          .finally(() => {
            stopping.delete(row.name);
            hooks?.enqueue(app);
          });
        stopping.set(row.name, stopped);
      }
    }
  }

  /** The progress deadline passed: report the first new replica that is not healthy. */
  function stallReport(app: string, rollout: RolloutRecord, rows: ReplicaRecord[]): StallReport {
    const seconds = Math.round(config.progressDeadlineMs / 1000);
    const unhealthy = rows.find((row) => row.releaseVersion === rollout.releaseVersion && !row.ready && row.retirePhase === "");
    return {
      message: `no replica became healthy for ${seconds} s${unhealthy ? ` (${unhealthy.name} is ${ReplicaState[unhealthy.state]})` : ""}`,
      logTail: unhealthy ? supervisor.logs.tail({ app, replica: unhealthy.name }, 20).map((line) => line.text) : [],
      processType: unhealthy?.processType,
      replica: unhealthy?.name,
    };
  }

  async function converge(pass: ConvergePass): Promise<ConvergeOutcome> {
    const { app, target, canary } = pass;
    const name = app.name;
    const wake = new Wake();
    const formation = new Map((await listFormation(db, name)).map((entry) => [entry.processType, entry]));
    let rows = await syncReplicas(pass, await listReplicas(db, name));
    // Read again: a replica that turned healthy moved the progress deadline.
    const rollout = pass.rollout && (await findActiveRollout(db, name));

    // Plan each type towards the target: its processes, at the formation's scale.
    const desiredTypes = new Map<string, number>();
    for (const process of target?.processes ?? []) {
      if (routingClassOf(process.processType) === RoutingClass.RELEASE) continue;
      desiredTypes.set(process.processType, formation.get(process.processType)?.replicas ?? 0);
    }
    const types = new Set([...desiredTypes.keys(), ...rows.map((row) => row.processType)]);
    const isCurrent = (row: ReplicaRecord) =>
      target !== undefined && row.releaseVersion === target.version && row.restartGeneration === (formation.get(row.processType)?.restartGeneration ?? 0);
    // A canary's replicas run beside the target's, planned apart.
    const isCanary = (row: ReplicaRecord) => canary !== undefined && row.releaseVersion === canary.release.version;
    const canaryTypes = canary === undefined ? [] : canaryTypesOf(canary.release, formation);
    const plannedOf = (processType: string, canaries = false): PlannedReplica[] =>
      rows
        .filter((row) => row.processType === processType && row.retirePhase === "" && isCanary(row) === canaries)
        .map((row) => ({ name: row.name, index: row.index, current: canaries || isCurrent(row), ready: row.ready, zone: row.zone }));

    const starts: Promise<void>[] = [];
    let retired = 0;
    const plans = [...types].map((processType) => {
      const desired = desiredTypes.get(processType) ?? 0;
      const plan = planRollingUpdate({
        desired,
        maxSurge: maxSurgeFor(desired, config.maxSurgePercent),
        zones: desired >= 2 ? config.zones : config.zones.slice(0, 1),
        replicas: plannedOf(processType),
      });
      return { processType, plan, release: target };
    });
    // One canary replica per web type, whatever its share: it is there to be measured.
    for (const processType of canaryTypes) {
      const plan = planRollingUpdate({ desired: 1, maxSurge: 1, zones: config.zones.slice(0, 1), replicas: plannedOf(processType, true) });
      plans.push({ processType, plan, release: canary?.release });
    }
    for (const { processType, plan, release } of plans) {
      for (const slot of plan.start) starts.push(startReplica(pass, release!, formation.get(processType), processType, slot));
      for (const { name: replica, reason } of plan.retire) {
        const why = app.deleting ? "app-deleted" : desiredTypes.has(processType) ? reason : "removed-from-procfile";
        await setRetirePhase(db, replica, "unrouted", { reason: why, generation: 0 });
        await pass.event(RolloutEventKind.REPLICA_DRAINING, { processType, replica, message: retireMessage("leaving the endpoints", why) });
        rows = rows.map((row) =>
          row.name === replica ? { ...row, retirePhase: "unrouted", retireReason: why, retireGeneration: 0, retirePhaseSince: new Date() } : row,
        );
        retired += 1;
      }
    }
    const generation = await publishEndpoints(app, target, formation, rows, canary);
    if (retired > 0) {
      await stampRetireGeneration(db, name, generation);
      rows = rows.map((row) => (row.retirePhase === "unrouted" && row.retireGeneration === 0 ? { ...row, retireGeneration: generation } : row));
    }
    const counts = readyCounts(rows);
    if (shownReadyCounts.get(name) !== counts) {
      shownReadyCounts.set(name, counts);
      hooks?.appChanged(name);
    }
    await advanceRetirements(name, rows, wake);
    if (rows.some((row) => row.retirePhase !== "")) appsWithRetirements.add(name);
    else appsWithRetirements.delete(name);
    await Promise.all(starts);

    if (app.deleting) {
      const left = await listReplicas(db, name);
      const gone = left.length === 0 && stopping.size === 0 && starting.size === 0;
      return { state: gone ? "converged" : "progressing", wakeAt: wake.at };
    }
    if (rollout === undefined) return { state: "converged", wakeAt: wake.at };
    const canaryReady = canaryTypes.every((processType) => plannedOf(processType, true).some((replica) => replica.ready));
    const scope = rollout.processTypes.length > 0 ? rollout.processTypes : [...types];
    const converged =
      starts.length === 0 &&
      canaryReady &&
      scope.every((processType) => rollingUpdateDone({ desired: desiredTypes.get(processType) ?? 0, replicas: plannedOf(processType) }, 0));
    if (converged) return { state: "converged", wakeAt: wake.at, canaryReady };
    if (rollout.progressDeadlineAt !== null) {
      if (Date.now() >= rollout.progressDeadlineAt.getTime())
        return { state: "stalled", stall: stallReport(name, rollout, rows), wakeAt: wake.at, canaryReady };
      wake.soon(rollout.progressDeadlineAt.getTime());
    }
    return { state: "progressing", wakeAt: wake.at, canaryReady };
  }

  async function teamOf(app: string): Promise<string> {
    return (await findApp(db, app))?.team ?? "";
  }

  /** After a restart: adopt the replicas that still run, forget those that do not. */
  async function recover(): Promise<void> {
    const releases = new Map<string, ReleaseRecord | undefined>();
    const formations = new Map<string, Map<string, FormationRecord>>();
    const adoptedNames = new Set<string>();
    const teams = new Map((await listApps(db)).map((app) => [app.name, app.team]));
    for (const row of await listReplicas(db)) {
      const releaseKey = `${row.app}/${row.releaseVersion}`;
      if (!releases.has(releaseKey)) releases.set(releaseKey, await findRelease(db, row.app, row.releaseVersion));
      if (!formations.has(row.app)) formations.set(row.app, new Map((await listFormation(db, row.app)).map((entry) => [entry.processType, entry])));
      const release = releases.get(releaseKey);
      const adopted =
        release !== undefined
          ? await supervisor.adoptReplica(
              replicaSpecFor(config, release, formations.get(row.app)!.get(row.processType), row, teams.get(row.app) ?? ""),
              row.runtimeId,
            )
          : undefined;
      if (adopted === undefined) {
        logger.info("replica from before the restart is gone", { replica: row.name });
        await deleteReplica(db, row.name);
      } else {
        adoptedNames.add(row.name);
        logger.info("adopted replica", { replica: row.name, port: adopted.port });
      }
    }
    const strays = await supervisor.stopStrays(adoptedNames, config.stopGraceMs);
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
      const rollout = await findActiveRollout(db, app.name);
      const version = desiredReleaseVersion(app, rollout);
      const target = version > 0 ? await findRelease(db, app.name, version) : undefined;
      const formation = new Map((await listFormation(db, app.name)).map((entry) => [entry.processType, entry]));
      // A canary keeps its share across the restart.
      const canary = rollout?.state === "rolling" && canaryActive(rollout.canary) ? rollout.canary : undefined;
      const canaryRelease = canary && (await findRelease(db, app.name, rollout!.releaseVersion));
      const split = canaryRelease && { release: canaryRelease, percent: canary!.state === "running" ? canary!.currentPercent : 0 };
      await publishEndpoints(app, target, formation, await listReplicas(db, app.name), split);
    }
  }

  return {
    commands: createLocalCommandRunner(supervisor, { commandTimeoutMs: config.commandTimeoutMs, graceMs: config.stopGraceMs }),
    releaseTasks: {
      start: async (release) => supervisor.startReleaseTask(releaseTaskSpecFor(config, release, await teamOf(release.app))),
      resume: async (release, runtimeId, deadline) =>
        supervisor.resumeReleaseTask(releaseTaskSpecFor(config, release, await teamOf(release.app)), runtimeId, deadline),
    },
    buildTasks: {
      start: async (release, build) => supervisor.startReleaseTask(buildTaskSpecFor(config, release, await teamOf(release.app), build)),
      resume: async (release, build, deadline) =>
        supervisor.resumeReleaseTask(buildTaskSpecFor(config, release, await teamOf(release.app), build), "", deadline),
    },
    logs: { tail: async (filter, lines) => supervisor.logs.tail(filter, lines), follow: (filter, listener) => supervisor.logs.follow(filter, listener) },
    async deleteReplica(_app, replica) {
      // The plan starts its replacement; the replica itself leaves through the endpoint protocol like any other.
      if (replica.retirePhase === "") await setRetirePhase(db, replica.name, "unrouted", { reason: "deleted", generation: 0 });
    },
    async start(engineHooks) {
      hooks = engineHooks;
      await recover();
      await publishStoredEndpoints();
      stopWatching = supervisor.onReplicaChange((status) => engineHooks.enqueue(status.app));
      endpoints.onProgress(() => {
        for (const app of appsWithRetirements) engineHooks.enqueue(app);
      });
    },
    converge,
    async forgetApp(app) {
      shownReadyCounts.delete(app);
      await endpoints.removeApp(app);
    },
    async close() {
      stopWatching?.();
      await Promise.all(stopping.values());
    },
  };
}
