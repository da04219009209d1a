import { createHash } from "node:crypto";
import { field, isJsonObject, type JsonObject } from "../patch.js";
import { StatusError } from "../status.js";
import { type Cluster, type Controller, controllerOf, labelsOf, metaOf, now, ownKey, splitKey } from "./runtime.js";

/** What a pod's containers do in the simulation. */
export type PodOutcome =
  /** Start, then pass readiness after `delayMs`. */
  | "ready"
  /** Start and run, but never pass readiness. */
  | "never-ready"
  /** Exit with code 1 after `delayMs`, restarted with back-off (CrashLoopBackOff). */
  | "crash-loop"
  /** Killed for exceeding the memory limit (exit 137, OOMKilled) after `delayMs`, restarted with back-off. */
  | "oom-killed"
  /** The image cannot be pulled (ErrImagePull, then ImagePullBackOff); never starts. */
  | "image-pull-error"
  /** Exit 0 after `delayMs` (a Job pod completes). */
  | "succeed"
  /** Exit 1 after `delayMs` (a Job pod fails). */
  | "fail";

/** How one pod behaves, chosen by the `podBehaviour` hook when the pod is scheduled. */
export interface PodBehaviour {
  outcome: PodOutcome;
  /** Milliseconds from container start to ready (`ready`) or to exit; defaults from the timings. */
  delayMs?: number;
  /** Lines every container writes to its log each time it starts. */
  logs?: readonly string[];
  /** The exit code of `fail` (default 1). */
  exitCode?: number;
}

/** Picks a pod's behaviour; undefined falls back to the default (ready, or succeed for pods that do not restart). */
export type PodBehaviourHook = (pod: JsonObject) => PodBehaviour | undefined;

/** The simulation's clock, in milliseconds. */
export interface PodTimings {
  /** Scheduling to containers started (image pull). */
  startMs: number;
  /** Container start to readiness. */
  readyMs: number;
  /** Container start to exit, for outcomes that exit. */
  exitMs: number;
  /** Back-off before a crashed container restarts. */
  restartBackoffMs: number;
  /** How long a deleted pod stays Terminating (preStop and SIGTERM) before it is gone; capped by its grace period. */
  terminationMs: number;
}

export const defaultTimings: PodTimings = { startMs: 20, readyMs: 50, exitMs: 100, restartBackoffMs: 200, terminationMs: 50 };

/**
 * The image ID a container runtime reports once it pulled `image`: the
 * repository and the digest of the manifest it pulled (`name@sha256:…`, as
 * containerd reports it). A reference pinned by digest pulls that digest; a
 * tag resolves, in the registry the simulated nodes pull from, to a digest
 * derived from the reference.
 */
export function pulledImageId(image: string): string {
  const at = image.indexOf("@");
  const withoutDigest = at >= 0 ? image.slice(0, at) : image;
  const colon = withoutDigest.lastIndexOf(":");
  const name = colon > withoutDigest.lastIndexOf("/") ? withoutDigest.slice(0, colon) : withoutDigest;
  const digest = at >= 0 ? image.slice(at + 1) : `sha256:${createHash("sha256").update(image).digest("hex")}`;
  return `${name}@${digest}`;
}

/** A node of the fake cluster. */
export interface FakeNode {
  name: string;
  zone: string;
}

export const defaultNodes: readonly FakeNode[] = [
  { name: "node-a", zone: "zone-a" },
  { name: "node-b", zone: "zone-b" },
  { name: "node-c", zone: "zone-c" },
];

interface LogLine {
  time: string;
  text: string;
}

interface ContainerLog {
  current: LogLine[];
  previous: LogLine[];
  followers: Set<(line: LogLine | undefined) => void>;
}

interface PodRuntime {
  uid: string;
  key: string;
  started: boolean;
  terminating: boolean;
  timers: Set<NodeJS.Timeout>;
  logs: Map<string, ContainerLog>;
}

/** How a log read is asked for (the `/log` subresource's query). */
export interface LogRequest {
  container?: string;
  previous?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  /** Only lines written at or after this RFC 3339 time (whole seconds, as the API's metav1.Time keeps it). */
  sinceTime?: string;
  timestamps?: boolean;
}

/** The kubelet side of pods: scheduling onto nodes, container lifecycles, logs. */
export interface Kubelet extends Controller {
  /** Creates the Node objects (once, when the cluster starts). */
  registerNodes(): void;
  /** The log lines of a pod's container, or a 400 like a real kubelet when it has not started. */
  readLog(namespace: string, pod: string, request: LogRequest): string[];
  /** Calls `onLine` with each later line until the container stops (then `onEnd`); returns the unsubscribe. */
  followLog(namespace: string, pod: string, request: LogRequest, onLine: (text: string) => void, onEnd: () => void): () => void;
  /** Appends a line to a running container's log, as the process would print it. */
  writeLog(namespace: string, pod: string, text: string, container?: string): void;
  stop(): void;
}

const containersOf = (pod: JsonObject): JsonObject[] =>
  Array.isArray(field(pod, "spec", "containers")) ? (field(pod, "spec", "containers") as JsonObject[]) : [];

function defaultBehaviour(pod: JsonObject): PodBehaviour {
  const restartPolicy = field(pod, "spec", "restartPolicy") ?? "Always";
  return { outcome: restartPolicy === "Always" ? "ready" : "succeed" };
}

function condition(type: string, status: boolean, reason?: string): JsonObject {
  return { type, status: status ? "True" : "False", lastProbeTime: null, lastTransitionTime: now(), ...(reason ? { reason } : {}) };
}

/** Creates the kubelet simulation for the nodes given. */
export function createKubelet(cluster: Cluster, nodes: readonly FakeNode[], behaviourOf: () => PodBehaviourHook | undefined, timings: PodTimings): Kubelet {
  const { pod: podKind, node: nodeKind } = cluster.kinds;
  const runtimes = new Map<string, PodRuntime>();
  const nextAddress = new Map<string, number>();

  const after = (runtime: PodRuntime, delayMs: number, action: () => void) => {
    const timer = setTimeout(() => {
      runtime.timers.delete(timer);
      if (runtimes.get(runtime.key) === runtime) action();
    }, delayMs);
    runtime.timers.add(timer);
  };

  /** Rewrites the live pod's status; does nothing when the pod is gone or has been replaced. */
  const setStatus = (runtime: PodRuntime, change: (status: JsonObject, pod: JsonObject) => void) => {
    const [namespace, name] = splitKey(runtime.key);
    const pod = cluster.get(podKind, namespace, name);
    if (pod === undefined || metaOf(pod).uid !== runtime.uid) return;
    const status = isJsonObject(pod.status) ? structuredClone(pod.status) : {};
    change(status, pod);
    cluster.updateStatus(podKind, { ...pod, status }, "kubelet");
  };

  const setContainers = (status: JsonObject, pod: JsonObject, state: (container: JsonObject, previous: JsonObject | undefined) => JsonObject) => {
    const previous = Array.isArray(status.containerStatuses) ? (status.containerStatuses as JsonObject[]) : [];
    status.containerStatuses = containersOf(pod).map((container) => {
      const before = previous.find((entry) => entry.name === container.name);
      const entry: JsonObject = {
        name: container.name,
        image: container.image,
        imageID: "",
        restartCount: 0,
        ready: false,
        started: false,
        ...before,
        ...state(container, before),
      };
      // Known once the image is pulled: a container that ran or runs.
      const current = isJsonObject(entry.state) ? entry.state : {};
      if (current.running !== undefined || current.terminated !== undefined) entry.imageID = pulledImageId(String(container.image));
      return entry;
    });
  };

  const setReady = (status: JsonObject, ready: boolean) => {
    const conditions = (Array.isArray(status.conditions) ? (status.conditions as JsonObject[]) : []).filter(
      (entry) => entry.type !== "Ready" && entry.type !== "ContainersReady",
    );
    status.conditions = [
      ...conditions,
      condition("ContainersReady", ready, ready ? undefined : "ContainersNotReady"),
      condition("Ready", ready, ready ? undefined : "ContainersNotReady"),
    ];
  };

  const endFollowers = (runtime: PodRuntime) => {
    for (const log of runtime.logs.values()) {
      for (const follower of log.followers) follower(undefined);
      log.followers.clear();
    }
  };

  const appendLog = (runtime: PodRuntime, container: string, text: string) => {
    let log = runtime.logs.get(container);
    if (log === undefined) runtime.logs.set(container, (log = { current: [], previous: [], followers: new Set() }));
    const line = { time: new Date().toISOString(), text };
    log.current.push(line);
    for (const follower of log.followers) follower(line);
  };

  const behaviourFor = (pod: JsonObject): PodBehaviour => behaviourOf()?.(pod) ?? defaultBehaviour(pod);

  const runContainers = (runtime: PodRuntime, behaviour: PodBehaviour) => {
    setStatus(runtime, (status, pod) => {
      status.phase = "Running";
      setContainers(status, pod, () => ({ state: { running: { startedAt: now() } }, started: true, ready: false, containerID: `fake://${runtime.uid}` }));
      setReady(status, false);
    });
    const [namespace, name] = splitKey(runtime.key);
    const pod = cluster.get(podKind, namespace, name);
    for (const container of pod ? containersOf(pod) : []) for (const text of behaviour.logs ?? []) appendLog(runtime, String(container.name), text);
    switch (behaviour.outcome) {
      case "ready":
        return after(runtime, behaviour.delayMs ?? timings.readyMs, () =>
          setStatus(runtime, (status, pod) => {
            setContainers(status, pod, () => ({ ready: true }));
            setReady(status, true);
          }),
        );
      case "never-ready":
        return;
      case "crash-loop":
        return after(runtime, behaviour.delayMs ?? timings.exitMs, () => exit(runtime, behaviour, 1, "Error"));
      case "oom-killed":
        return after(runtime, behaviour.delayMs ?? timings.exitMs, () => exit(runtime, behaviour, 137, "OOMKilled"));
      case "succeed":
        return after(runtime, behaviour.delayMs ?? timings.exitMs, () => exit(runtime, behaviour, 0, "Completed"));
      case "fail":
        return after(runtime, behaviour.delayMs ?? timings.exitMs, () => exit(runtime, behaviour, behaviour.exitCode ?? 1, "Error"));
      case "image-pull-error":
        return;
    }
  };

  /** The containers exited: the pod finishes (restartPolicy Never, or OnFailure after success) or restarts them with back-off. */
  const exit = (runtime: PodRuntime, behaviour: PodBehaviour, exitCode: number, reason: string) => {
    endFollowers(runtime);
    setStatus(runtime, (status, pod) => {
      const restartPolicy = field(pod, "spec", "restartPolicy") ?? "Always";
      const restart = restartPolicy === "Always" || (restartPolicy === "OnFailure" && exitCode !== 0);
      setContainers(status, pod, (_container, before) => {
        const terminated = {
          exitCode,
          reason,
          startedAt: field(before, "state", "running", "startedAt") ?? now(),
          finishedAt: now(),
          containerID: `fake://${runtime.uid}`,
        };
        return restart
          ? {
              state: {
                waiting: {
                  reason: "CrashLoopBackOff",
                  message: `back-off restarting failed container ${String(_container.name)} in pod ${String(metaOf(pod).name)}`,
                },
              },
              lastState: { terminated },
              restartCount: Number(before?.restartCount ?? 0) + 1,
              ready: false,
              started: false,
            }
          : { state: { terminated }, ready: false, started: false };
      });
      setReady(status, false);
      if (!restart) status.phase = exitCode === 0 ? "Succeeded" : "Failed";
      if (restart) {
        // The ended container's log is the `previous` one from now on, through the back-off too, as a kubelet keeps it.
        for (const log of runtime.logs.values()) {
          log.previous = log.current;
          log.current = [];
        }
        after(runtime, timings.restartBackoffMs, () => runContainers(runtime, behaviour));
      }
    });
  };

  const start = (runtime: PodRuntime, pod: JsonObject) => {
    const behaviour = behaviourFor(pod);
    after(runtime, timings.startMs, () => {
      if (behaviour.outcome !== "image-pull-error") return runContainers(runtime, behaviour);
      const image = (container: JsonObject) => String(container.image);
      setStatus(runtime, (status, live) =>
        setContainers(status, live, (container) => ({
          state: { waiting: { reason: "ErrImagePull", message: `failed to pull and unpack image "${image(container)}": not found` } },
        })),
      );
      after(runtime, timings.restartBackoffMs, () =>
        setStatus(runtime, (status, live) =>
          setContainers(status, live, (container) => ({
            state: { waiting: { reason: "ImagePullBackOff", message: `Back-off pulling image "${image(container)}"` } },
          })),
        ),
      );
    });
  };

  /** The default scheduler's choice: a Ready node matching nodeSelector, spreading the pods of one owner over zones, then nodes. */
  const schedule = (pod: JsonObject): JsonObject | undefined => {
    const selector = field(pod, "spec", "nodeSelector");
    const candidates = cluster
      .list(nodeKind)
      .filter((node) => !isJsonObject(selector) || Object.entries(selector).every(([key, value]) => labelsOf(node)[key] === value));
    const owner = controllerOf(pod)?.uid;
    const siblings = cluster
      .list(podKind, metaOf(pod).namespace as string)
      .filter((other) => owner !== undefined && controllerOf(other)?.uid === owner && field(other, "spec", "nodeName") !== undefined);
    const zoneOf = (nodeName: unknown) => labelsOf(candidates.find((node) => metaOf(node).name === nodeName) ?? {})["topology.kubernetes.io/zone"];
    const score = (node: JsonObject) => {
      const name = metaOf(node).name;
      const zone = labelsOf(node)["topology.kubernetes.io/zone"];
      return [
        siblings.filter((other) => zoneOf(field(other, "spec", "nodeName")) === zone).length,
        siblings.filter((other) => field(other, "spec", "nodeName") === name).length,
        cluster.list(podKind).filter((other) => field(other, "spec", "nodeName") === name).length,
      ];
    };
    return candidates
      .map((node) => ({ node, score: score(node) }))
      .sort(
        (a, b) =>
          a.score[0]! - b.score[0]! ||
          a.score[1]! - b.score[1]! ||
          a.score[2]! - b.score[2]! ||
          String(metaOf(a.node).name).localeCompare(String(metaOf(b.node).name)),
      )[0]?.node;
  };

  const addressOn = (nodeName: string) => {
    const index = Math.max(
      0,
      nodes.findIndex((node) => node.name === nodeName),
    );
    const next = ((nextAddress.get(nodeName) ?? 1) % 253) + 1;
    nextAddress.set(nodeName, next);
    return { hostIP: `10.0.0.${index + 10}`, podIP: `10.244.${index}.${next}` };
  };

  const bind = (pod: JsonObject) => {
    const node = schedule(pod);
    if (node === undefined) return;
    const bound = cluster.update(podKind, { ...pod, spec: { ...(pod.spec as JsonObject), nodeName: metaOf(node).name } }, "default-scheduler");
    const addresses = addressOn(String(metaOf(node).name));
    cluster.updateStatus(
      podKind,
      {
        ...bound,
        status: {
          phase: "Pending",
          ...addresses,
          podIPs: [{ ip: addresses.podIP }],
          startTime: now(),
          qosClass: "BestEffort",
          conditions: [
            condition("PodScheduled", true),
            condition("Initialized", true),
            condition("ContainersReady", false, "ContainersNotReady"),
            condition("Ready", false, "ContainersNotReady"),
          ],
          containerStatuses: containersOf(pod).map((container) => ({
            name: container.name,
            image: container.image,
            imageID: "",
            restartCount: 0,
            ready: false,
            started: false,
            state: { waiting: { reason: "ContainerCreating" } },
          })),
        },
      },
      "kubelet",
    );
  };

  const runtimeOf = (namespace: string, name: string): PodRuntime => {
    const runtime = runtimes.get(`${namespace}/${name}`);
    if (runtime === undefined) throw new StatusError("NotFound", `pods "${name}" not found`, { name, kind: "pods" });
    return runtime;
  };

  /** The container a log request means, refusing what kubelet refuses. */
  const logOf = (namespace: string, name: string, request: LogRequest): ContainerLog => {
    const pod = cluster.get(podKind, namespace, name);
    if (pod === undefined) throw new StatusError("NotFound", `pods "${name}" not found`, { name, kind: "pods" });
    const names = containersOf(pod).map((container) => String(container.name));
    const container = request.container ?? (names.length === 1 ? names[0]! : undefined);
    if (container === undefined) throw new StatusError("BadRequest", `a container name must be specified for pod ${name}, choose one of: [${names.join(" ")}]`);
    if (!names.includes(container)) throw new StatusError("BadRequest", `container ${container} is not valid for pod ${name}`);
    const status = (Array.isArray(field(pod, "status", "containerStatuses")) ? (field(pod, "status", "containerStatuses") as JsonObject[]) : []).find(
      (entry) => entry.name === container,
    );
    const waiting = field(status, "state", "waiting", "reason");
    const log = runtimeOf(namespace, name).logs.get(container);
    if (log === undefined && typeof waiting === "string")
      throw new StatusError("BadRequest", `container "${container}" in pod "${name}" is waiting to start: ${waiting}`);
    if (request.previous && field(status, "lastState", "terminated") === undefined)
      throw new StatusError("BadRequest", `previous terminated container "${container}" in pod "${name}" not found`);
    return log ?? { current: [], previous: [], followers: new Set() };
  };

  const render = (line: LogLine, request: LogRequest) => (request.timestamps ? `${line.time} ${line.text}` : line.text);
  const selectLines = (lines: LogLine[], request: LogRequest) => {
    const since =
      request.sinceTime !== undefined
        ? Math.floor(Date.parse(request.sinceTime) / 1000) * 1000
        : request.sinceSeconds === undefined
          ? undefined
          : Date.now() - request.sinceSeconds * 1000;
    const recent = since === undefined ? lines : lines.filter((line) => Date.parse(line.time) >= since);
    return request.tailLines === undefined ? recent : recent.slice(Math.max(0, recent.length - request.tailLines));
  };

  return {
    name: "kubelet",
    triggers: [{ kind: podKind, keys: ownKey }],
    registerNodes() {
      nodes.forEach((node, index) => {
        if (cluster.get(nodeKind, undefined, node.name) !== undefined) return;
        const created = cluster.create(
          nodeKind,
          {
            apiVersion: "v1",
            kind: "Node",
            metadata: {
              name: node.name,
              labels: { "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": node.zone },
            },
          },
          "kubelet",
        );
        cluster.updateStatus(
          nodeKind,
          {
            ...created,
            status: {
              conditions: [
                {
                  type: "Ready",
                  status: "True",
                  reason: "KubeletReady",
                  message: "kubelet is posting ready status",
                  lastHeartbeatTime: now(),
                  lastTransitionTime: now(),
                },
              ],
              addresses: [
                { type: "InternalIP", address: `10.0.0.${index + 10}` },
                { type: "Hostname", address: node.name },
              ],
              capacity: { cpu: "4", memory: "16Gi", pods: "110" },
              allocatable: { cpu: "4", memory: "16Gi", pods: "110" },
              nodeInfo: {
                kubeletVersion: "v1.32.0-fake",
                containerRuntimeVersion: "fake://1.0",
                operatingSystem: "linux",
                architecture: "amd64",
                osImage: "fake",
                kernelVersion: "fake",
                kubeProxyVersion: "",
                machineID: "",
                systemUUID: "",
                bootID: "",
              },
            },
          },
          "kubelet",
        );
      });
    },
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const pod = cluster.get(podKind, namespace, name);
      let runtime = runtimes.get(key);
      if (runtime !== undefined && (pod === undefined || metaOf(pod).uid !== runtime.uid)) {
        for (const timer of runtime.timers) clearTimeout(timer);
        endFollowers(runtime);
        runtimes.delete(key);
        runtime = undefined;
      }
      if (pod === undefined) return undefined;
      if (runtime === undefined)
        runtimes.set(key, (runtime = { uid: String(metaOf(pod).uid), key, started: false, terminating: false, timers: new Set(), logs: new Map() }));
      if (metaOf(pod).deletionTimestamp !== undefined) {
        if (runtime.terminating) return undefined;
        runtime.terminating = true;
        for (const timer of runtime.timers) clearTimeout(timer);
        runtime.timers.clear();
        const grace = Number(metaOf(pod).deletionGracePeriodSeconds ?? 30) * 1000;
        const current = runtime;
        after(current, Math.min(grace, timings.terminationMs), () => {
          endFollowers(current);
          cluster.remove(podKind, namespace, name, 0);
        });
        return undefined;
      }
      if (field(pod, "spec", "nodeName") === undefined) {
        bind(pod);
        return undefined;
      }
      if (!runtime.started && field(pod, "status", "phase") !== undefined) {
        runtime.started = true;
        start(runtime, pod);
      }
      return undefined;
    },
    readLog(namespace, name, request) {
      const log = logOf(namespace, name, request);
      return selectLines(request.previous ? log.previous : log.current, request).map((line) => render(line, request));
    },
    followLog(namespace, name, request, onLine, onEnd) {
      const log = logOf(namespace, name, request);
      for (const line of selectLines(log.current, request)) onLine(render(line, request));
      const pod = cluster.get(podKind, namespace, name);
      const running = field(pod, "status", "phase") === "Running" || field(pod, "status", "phase") === "Pending";
      if (!running || metaOf(pod ?? {}).deletionTimestamp !== undefined) {
        onEnd();
        return () => undefined;
      }
      const follower = (line: LogLine | undefined) => (line === undefined ? onEnd() : onLine(render(line, request)));
      log.followers.add(follower);
      // Make sure the container's log exists in the runtime so later lines reach this follower.
      const runtime = runtimeOf(namespace, name);
      const container = request.container ?? String(containersOf(pod!)[0]?.name);
      if (!runtime.logs.has(container)) runtime.logs.set(container, log);
      return () => log.followers.delete(follower);
    },
    writeLog(namespace, name, text, container) {
      const runtime = runtimeOf(namespace, name);
      const pod = cluster.get(podKind, namespace, name);
      appendLog(runtime, container ?? String(containersOf(pod ?? {})[0]?.name), text);
    },
    stop() {
      for (const runtime of runtimes.values()) {
        for (const timer of runtime.timers) clearTimeout(timer);
        endFollowers(runtime);
      }
      runtimes.clear();
    },
  };
}
