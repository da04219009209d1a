import { Writable } from "node:stream";
import { CoreV1Api, Exec } from "@kubernetes/client-node";
import type { KubeConfig, V1Status } from "@kubernetes/client-node";
import { failedPrecondition, isKubernetesNotFound } from "@berth/kit";
import { createChunkQueue } from "../chunk-queue.js";
import type { CommandEvent } from "../engine.js";

/** What `ps:exec` on a cluster needs. */
export interface PodExecOptions {
  kubeConfig: KubeConfig;
  /** The namespace of an app's pods, undefined for an app that is gone. */
  namespaceOf(app: string): Promise<string | undefined>;
  /** A command still running after this long is stopped. */
  timeoutMs: number;
}

/** How the error channel's Status ends a command: its exit code, or why there is none. */
export function exitOfStatus(status: V1Status | undefined): CommandEvent {
  if (status === undefined) return { kind: "exit", code: null, reason: "the exec stream ended without the command's status" };
  if (status.status === "Success") return { kind: "exit", code: 0, reason: "" };
  const code = status.reason === "NonZeroExitCode" ? Number(status.details?.causes?.find((cause) => cause.reason === "ExitCode")?.message) : Number.NaN;
  return Number.isInteger(code)
    ? { kind: "exit", code, reason: "" }
    : { kind: "exit", code: null, reason: status.message ?? status.reason ?? "the command failed" };
}

/**
 * `ps:exec` on a cluster: `/bin/sh -c <command>` in the replica's pod
 * (its app container, with its environment), through the pod exec
 * subresource, as kubectl exec does: stdout and stderr stream back, and the
 * exit code comes in the Status on the error channel. Closing the stream
 * (the caller left, the timeout) ends the command.
 */
export function createPodExec(options: PodExecOptions) {
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const exec = new Exec(options.kubeConfig);
  return async function* execInPod(app: string, replica: string, command: string, signal: AbortSignal): AsyncGenerator<CommandEvent> {
    const namespace = await options.namespaceOf(app);
    if (namespace === undefined) throw failedPrecondition(`app "${app}" is gone`);
    const pod = await core.readNamespacedPod({ namespace, name: replica }).catch((error: unknown) => {
      throw isKubernetesNotFound(error) ? failedPrecondition(`replica "${replica}" of app "${app}" is gone`) : error;
    });
    const container = pod.spec?.containers[0]?.name;
    if (container === undefined || pod.status?.phase !== "Running") throw failedPrecondition(`replica "${replica}" of app "${app}" is not running`);
    const queue = createChunkQueue<CommandEvent>();
    // Pushed as they come, in order: the exit is pushed once the socket closed, after every frame before it.
    const sink = (kind: "stdout" | "stderr") =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          queue.push({ kind, data: chunk });
          done();
        },
      });
    let status: V1Status | undefined;
    let stopped = "";
    const socket = await exec
      .exec(namespace, replica, container, ["/bin/sh", "-c", command], sink("stdout"), sink("stderr"), null, false, (received) => {
        status = received;
      })
      .catch((error: unknown) => {
        throw failedPrecondition(`could not exec in replica "${replica}": ${(error as Error).message}`);
      });
    const stop = (reason: string) => {
      if (stopped !== "") return;
      stopped = reason;
      socket.close();
    };
    const onAbort = () => stop("stopped: the caller went away");
    signal.addEventListener("abort", onAbort);
    if (signal.aborted) onAbort();
    const timer = setTimeout(() => stop(`timed out after ${Math.round(options.timeoutMs / 1000)} s`), options.timeoutMs);
    socket.on("close", () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      queue.push(stopped !== "" && status === undefined ? { kind: "exit", code: null, reason: stopped } : exitOfStatus(status));
      queue.end();
    });
    yield* queue;
  };
}
