import { Writable } from "node:stream";
import { CoreV1Api, Log } from "@kubernetes/client-node";
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { LABEL, labelSelector } from "@berth/kit";
import type { Logger } from "@berth/kit";
import { LogStream } from "@berth/proto/type/v1/process";
import type { LogEntry, LogFilter, LogReader } from "../engine.js";
import type { ClusterState } from "./cluster-state.js";
import { appPods, podProcessType } from "./pod-replicas.js";

/** Options of createPodLogs. */
export interface PodLogsOptions {
  kubeConfig: KubeConfig;
  state: ClusterState;
  /** The namespace of an app's pods; undefined when there is no such app. */
  namespaceOf(app: string): Promise<string | undefined>;
  managedBy: string;
  logger: Logger;
  /** Wait before a follow that ended while its container still runs is opened again (default 500 ms). */
  reopenMs?: number;
}

function matches(filter: LogFilter, pod: V1Pod): boolean {
  return (!filter.processType || podProcessType(pod) === filter.processType) && (!filter.replica || pod.metadata?.name === filter.replica);
}

/** A line of `?timestamps=true` output: the RFC 3339 time, a space, the text. */
function entryOf(pod: V1Pod, line: string): LogEntry {
  const space = line.indexOf(" ");
  const time = space > 0 ? new Date(line.slice(0, space)) : new Date(Number.NaN);
  const stamped = !Number.isNaN(time.getTime());
  return {
    time: stamped ? time : new Date(),
    app: pod.metadata!.labels![LABEL.name]!,
    processType: podProcessType(pod)!,
    replica: pod.metadata!.name!,
    releaseVersion: Number(pod.metadata?.labels?.[LABEL.version]?.replace(/^v/, "") ?? 0) || 0,
    // The log subresource interleaves stdout and stderr without telling them apart.
    stream: LogStream.STDOUT,
    text: stamped ? line.slice(space + 1) : line,
  };
}

function containerStatus(pod: V1Pod) {
  const processType = podProcessType(pod);
  return pod.status?.containerStatuses?.find((status) => status.name === processType);
}

/** One open follow of a pod's container. */
interface PodFollow {
  /** The container's restart count when the follow opened: a higher one is a new container with a new log. */
  restarts: number;
  open: boolean;
  abort?: AbortController;
  /** Time of the last line passed on; a follow opened again for the same container skips what came before. */
  lastTime: number;
  reopenAt: number;
}

/**
 * `logs` on Kubernetes, through the pods' log subresource (what `kubectl
 * logs` reads): the tail merges the last lines of every matching pod by
 * time; a follow streams each matching pod's container, opens pods that
 * appear later (a rollout, a restart, a scale-up) as the cluster state
 * reports them, and follows a restarted container's new log.
 */
export function createPodLogs(options: PodLogsOptions): LogReader {
  const { kubeConfig, state, logger } = options;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const streams = new Log(kubeConfig);
  const reopenMs = options.reopenMs ?? 500;

  async function tail(filter: LogFilter, lines: number): Promise<LogEntry[]> {
    if (lines === 0) return [];
    const namespace = await options.namespaceOf(filter.app);
    if (namespace === undefined) return [];
    const listed = await core.listNamespacedPod({
      namespace,
      labelSelector: labelSelector({ [LABEL.name]: filter.app, [LABEL.managedBy]: options.managedBy }),
    });
    const pods = appPods(listed.items, filter.app).filter((pod) => matches(filter, pod));
    const perPod = await Promise.all(
      pods.map(async (pod) => {
        try {
          const text = await core.readNamespacedPodLog({
            namespace,
            name: pod.metadata!.name!,
            container: podProcessType(pod)!,
            tailLines: lines,
            timestamps: true,
          });
          return text
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => entryOf(pod, line));
        } catch (error) {
          // A container that has not started (pulling, backing off) has no log yet: nothing to show of it.
          logger.debug("no log for pod", { pod: pod.metadata?.name, error });
          return [];
        }
      }),
    );
    return perPod
      .flat()
      .sort((a, b) => a.time.getTime() - b.time.getTime())
      .slice(-lines);
  }

  function follow(filter: LogFilter, listener: (entry: LogEntry) => void): () => void {
    const since = new Date();
    const follows = new Map<string, PodFollow>();
    let namespace: string | undefined;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;

    function open(pod: V1Pod, entry: PodFollow, fromNow: boolean): void {
      const name = pod.metadata!.name!;
      entry.open = true;
      let partial = "";
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          const lines = (partial + chunk.toString()).split("\n");
          partial = lines.pop()!;
          for (const line of lines) {
            if (line === "" || stopped) continue;
            const logged = entryOf(pod, line);
            if (logged.time.getTime() < entry.lastTime) continue;
            entry.lastTime = logged.time.getTime();
            listener(logged);
          }
          done();
        },
      });
      const ended = () => {
        if (!entry.open) return;
        entry.open = false;
        entry.reopenAt = Date.now() + reopenMs;
        schedule(reopenMs);
      };
      sink.on("finish", ended);
      // The client pipes the response into the sink and leaves the response's errors (a cut, our own abort) unhandled.
      sink.on("pipe", (source: NodeJS.ReadableStream) => source.on("error", ended));
      streams
        // Pods running when the follow began show only what they print from then on: the tail showed what came before.
        .log(namespace!, name, podProcessType(pod)!, sink, { follow: true, timestamps: true, ...(fromNow ? { sinceTime: since.toISOString() } : {}) })
        .then(
          (abort) => {
            entry.abort = abort;
            if (stopped) abort.abort();
          },
          (error: unknown) => {
            logger.debug("could not follow the pod's log", { pod: name, error });
            ended();
          },
        );
    }

    /** Opens what should be followed and is not: new pods, restarted containers, follows that ended early. */
    function consider(known: Set<string> | undefined): void {
      if (stopped || namespace === undefined || !state.synced(namespace)) return;
      const pods = appPods(state.pods(namespace), filter.app).filter((pod) => matches(filter, pod));
      const present = new Set(pods.map((pod) => pod.metadata!.name!));
      for (const [name, entry] of follows) {
        if (present.has(name)) continue;
        entry.abort?.abort();
        follows.delete(name);
      }
      for (const pod of pods) {
        const name = pod.metadata!.name!;
        const status = containerStatus(pod);
        if (status?.state?.running === undefined) continue;
        const restarts = status.restartCount ?? 0;
        let entry = follows.get(name);
        if (entry === undefined) {
          entry = { restarts, open: false, lastTime: 0, reopenAt: 0 };
          follows.set(name, entry);
          open(pod, entry, known?.has(name) ?? false);
        } else if (!entry.open && restarts !== entry.restarts) {
          entry.restarts = restarts;
          entry.lastTime = 0;
          open(pod, entry, false);
        } else if (!entry.open && Date.now() >= entry.reopenAt && pod.metadata?.deletionTimestamp === undefined) {
          // Cut while its container runs on: open again, skipping the lines already passed on.
          open(pod, entry, false);
        }
      }
    }

    function schedule(ms: number): void {
      if (stopped || timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        consider(undefined);
      }, ms);
    }

    const unsubscribe = state.onChange((changedNamespace, apps) => {
      if (changedNamespace === namespace && apps.has(filter.app)) consider(undefined);
    });
    void options
      .namespaceOf(filter.app)
      .then((found) => {
        if (found === undefined || stopped) return;
        state.follow(found);
        return state.whenSynced(found).then(() => {
          if (stopped) return;
          namespace = found;
          // The pods there now began before this follow; any that come later are followed from their first line.
          consider(new Set(appPods(state.pods(found), filter.app).map((pod) => pod.metadata!.name!)));
        });
      })
      .catch((error: unknown) => logger.warn("could not follow logs", { app: filter.app, error }));
    return () => {
      stopped = true;
      clearTimeout(timer);
      unsubscribe();
      for (const entry of follows.values()) entry.abort?.abort();
      follows.clear();
    };
  }

  return { tail, follow };
}
