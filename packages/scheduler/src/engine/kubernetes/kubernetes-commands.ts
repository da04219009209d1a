import { Writable } from "node:stream";
import { CoreV1Api, KubernetesObjectApi, Log } from "@kubernetes/client-node";
import type { KubeConfig, V1ContainerState, V1Pod } from "@kubernetes/client-node";
import { isKubernetesNotFound } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { ReleaseRecord } from "../../store/releases.js";
import { createChunkQueue } from "../chunk-queue.js";
import type { ChunkQueue } from "../chunk-queue.js";
import type { CommandEvent, CommandRunner } from "../engine.js";
import { ONE_OFF_CONTAINER, oneOffJobFor } from "./manifests.js";
import type { AppManifestInput, ManifestSettings } from "./manifests.js";

/** What the runner of one-off Jobs is built from. */
export interface KubernetesCommandOptions {
  kubeConfig: KubeConfig;
  settings: ManifestSettings;
  /** What a release's objects are made from (its team and formation). */
  manifestInput(release: ReleaseRecord): Promise<AppManifestInput>;
  logger: Logger;
  /** How often the Job's pod is read while it starts and after its log ended (default 250 ms). */
  pollMs?: number;
  /** `ps:exec` in a replica's pod. */
  exec: CommandRunner["exec"];
}

/** Waiting reasons of a container that will not start until something is fixed. */
const STUCK = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"]);

function containerState(pod: V1Pod | undefined): V1ContainerState | undefined {
  return pod?.status?.containerStatuses?.find((status) => status.name === ONE_OFF_CONTAINER)?.state;
}

/**
 * `run` on a cluster: a one-off is a Job of the release (its image, its
 * config Secret, the restricted pod security), so it never counts as a
 * replica, dies at the command timeout (activeDeadlineSeconds) and never
 * reruns (backoffLimit 0). Its log is followed through the log subresource
 * (which merges stdout and stderr), its exit code read from the pod, and
 * the Job deleted when the command ended or the caller left. `ps:exec`
 * goes through the pod exec subresource (pod-exec.ts).
 */
export function createKubernetesCommandRunner(options: KubernetesCommandOptions): CommandRunner {
  const { kubeConfig, settings, logger } = options;
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const logs = new Log(kubeConfig);
  const pollMs = options.pollMs ?? 250;
  const pause = (signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, pollMs);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });

  async function podOf(namespace: string, job: string): Promise<V1Pod | undefined> {
    return (await core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` })).items[0];
  }

  /** Waits until the Job's container runs or ended; says why when it cannot start. */
  async function started(namespace: string, job: string, signal: AbortSignal): Promise<{ pod: V1Pod } | { stuck: string }> {
    for (;;) {
      if (signal.aborted) return { stuck: "stopped: the caller went away" };
      const pod = await podOf(namespace, job);
      const state = containerState(pod);
      if (pod !== undefined && (state?.running !== undefined || state?.terminated !== undefined)) return { pod };
      const waiting = state?.waiting?.reason;
      if (waiting !== undefined && STUCK.has(waiting))
        return { stuck: `the container cannot start: ${waiting}${state?.waiting?.message ? ` (${state.waiting.message})` : ""}` };
      await pause(signal);
    }
  }

  /** Follows the container's log into `queue` until it ends (the container exited, or the caller left). */
  async function followLog(namespace: string, pod: string, queue: ChunkQueue<CommandEvent>, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          queue.push({ kind: "stdout", data: chunk });
          // Back-pressure: the log stream waits while the caller is behind.
          void queue.room().then(() => done());
        },
      });
      sink.on("finish", () => resolve());
      // The client pipes the response into the sink and leaves its errors (a cut, our own abort) to us.
      sink.on("pipe", (source: NodeJS.ReadableStream) => source.on("error", () => resolve()));
      logs.log(namespace, pod, ONE_OFF_CONTAINER, sink, { follow: true }).then(
        (abort) => {
          if (signal.aborted) abort.abort();
          else signal.addEventListener("abort", () => abort.abort());
        },
        (error: unknown) => {
          logger.debug("could not follow the one-off's log", { pod, error });
          resolve();
        },
      );
    });
  }

  /** How the container ended, once it has. */
  async function ended(namespace: string, job: string, signal: AbortSignal): Promise<CommandEvent> {
    for (;;) {
      if (signal.aborted) return { kind: "exit", code: null, reason: "stopped: the caller went away" };
      const pod = await podOf(namespace, job);
      const terminated = containerState(pod)?.terminated;
      if (terminated !== undefined) {
        if (terminated.reason === "OOMKilled") return { kind: "exit", code: null, reason: "OOMKilled" };
        return { kind: "exit", code: terminated.exitCode, reason: "" };
      }
      // The Job's deadline ends its pod without a container exit of its own.
      if (pod === undefined || pod.status?.phase === "Failed") return { kind: "exit", code: null, reason: "timed out: the Job's deadline passed" };
      await pause(signal);
    }
  }

  return {
    async *runOneOff(release, task, signal) {
      const job = oneOffJobFor(await options.manifestInput(release), { name: task.name, command: task.command, timeoutMs: task.timeoutMs }, settings);
      const namespace = job.metadata!.namespace!;
      await objects.create(job);
      try {
        const start = await started(namespace, task.name, signal);
        if ("stuck" in start) {
          yield { kind: "exit", code: null, reason: start.stuck };
          return;
        }
        const queue = createChunkQueue<CommandEvent>();
        const following = followLog(namespace, start.pod.metadata!.name!, queue, signal)
          .then(async () => queue.push(await ended(namespace, task.name, signal)))
          .catch((error: unknown) => queue.push({ kind: "exit", code: null, reason: `lost the one-off: ${(error as Error).message}` }))
          .finally(() => queue.end());
        yield* queue;
        await following;
      } finally {
        // Background propagation: the pod goes with its Job, which stops a command still running.
        await objects.delete(job, undefined, undefined, undefined, undefined, "Background").catch((error: unknown) => {
          if (!isKubernetesNotFound(error)) logger.warn("could not delete a one-off's Job", { job: task.name, error });
        });
      }
    },
    exec: options.exec,
  };
}
