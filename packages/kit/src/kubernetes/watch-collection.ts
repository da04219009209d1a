import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../logger.js";

/** Which objects to follow: one kind in one namespace (or all of them), narrowed by selectors. */
export interface CollectionSelection {
  /** e.g. `apps/v1` or `v1`. */
  apiVersion: string;
  kind: string;
  /** The URL plural, e.g. `deployments`. */
  plural: string;
  /** Undefined follows the kind in every namespace (or a cluster-scoped kind). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** Options of watchCollection. */
export interface WatchCollectionOptions extends CollectionSelection {
  kubeConfig: KubeConfig;
  /**
   * Called with every object of the selection after the first list and after
   * each change: by name in one namespace, by `namespace/name` across all.
   */
  onChange(objects: ReadonlyMap<string, KubernetesObject>): void;
  logger: Logger;
  /** First wait after a failed list or watch; doubles up to 10 s. */
  retryMs?: number;
}

/** A collection being followed. */
export interface CollectionWatch {
  stop(): void;
}

const MAX_RETRY_MS = 10_000;

function collectionPath(selection: CollectionSelection): string {
  const root = selection.apiVersion.includes("/") ? `/apis/${selection.apiVersion}` : `/api/${selection.apiVersion}`;
  return selection.namespace === undefined ? `${root}/${selection.plural}` : `${root}/namespaces/${selection.namespace}/${selection.plural}`;
}

function keyOf(selection: CollectionSelection, object: KubernetesObject): string | undefined {
  const name = object.metadata?.name;
  if (name === undefined || selection.namespace !== undefined) return name;
  return object.metadata?.namespace ? `${object.metadata.namespace}/${name}` : name;
}

/**
 * Lists a collection, then watches it from the list's resourceVersion,
 * keeping a copy of every selected object and reporting each change. A
 * watch that ends (server timeout, inactivity) resumes where it stopped;
 * one whose resourceVersion is too old (410 Expired) lists again; failures
 * retry with backoff. Event-driven: nothing polls.
 */
export function watchCollection(options: WatchCollectionOptions): CollectionWatch {
  // Loaded on first use: the client costs a process about 80 MB, and only the kubernetes engines watch.
  const clients = import("@kubernetes/client-node").then(({ KubernetesObjectApi, Watch }) => ({
    client: KubernetesObjectApi.makeApiClient(options.kubeConfig),
    watch: new Watch(options.kubeConfig),
  }));
  const objects = new Map<string, KubernetesObject>();
  const path = collectionPath(options);
  const firstRetryMs = options.retryMs ?? 500;
  let stopped = false;
  let active: AbortController | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let wakeRetry: (() => void) | undefined;

  async function list(): Promise<string> {
    const { client } = await clients;
    const result = await client.list(
      options.apiVersion,
      options.kind,
      options.namespace,
      undefined,
      undefined,
      undefined,
      options.fieldSelector,
      options.labelSelector,
    );
    objects.clear();
    for (const item of result.items) objects.set(keyOf(options, item)!, item);
    if (!stopped) options.onChange(objects);
    return result.metadata?.resourceVersion ?? "";
  }

  /** Where the next watch starts: the newest resourceVersion seen, or undefined when a new list is due. */
  let resumeFrom: string | undefined;

  /**
   * Follows one watch stream from `resumeFrom`, moving it along with every
   * event. Resolves with whether the stream carried anything at all.
   */
  function follow(from: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      let heard = false;
      let failure: Error | undefined;
      const onEvent = (type: string, object: KubernetesObject & { code?: number; message?: string }) => {
        if (stopped) return;
        heard = true;
        if (type === "ERROR") {
          if (object.code === 410) resumeFrom = undefined;
          else failure = new Error(`watch of ${path} failed: ${object.message ?? JSON.stringify(object)}`);
          active?.abort();
          return;
        }
        resumeFrom = object.metadata?.resourceVersion ?? resumeFrom;
        if (type === "BOOKMARK") return;
        const key = keyOf(options, object);
        if (key === undefined) return;
        if (type === "DELETED") objects.delete(key);
        else objects.set(key, object);
        options.onChange(objects);
      };
      const onDone = (error: unknown) => {
        if (failure) reject(failure);
        // The client ends an idle stream with a TimeoutError: resume like any other end.
        else if (error && !(error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError"))) reject(error);
        else resolve(heard);
      };
      const query = { resourceVersion: from, allowWatchBookmarks: true, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector };
      clients
        .then(({ watch }) => watch.watch(path, query, onEvent, onDone))
        .then((controller) => {
          active = controller;
          if (stopped) controller.abort();
        }, reject);
    });
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      wakeRetry = resolve;
      retryTimer = setTimeout(resolve, ms);
    });
  }

  async function run(): Promise<void> {
    let retryMs = firstRetryMs;
    while (!stopped) {
      try {
        resumeFrom ??= await list();
        if (stopped) return;
        const heard = await follow(resumeFrom);
        if (heard) {
          retryMs = firstRetryMs;
        } else if (!stopped) {
          // A stream that ended empty-handed is not retried at once: a server closing every watch would make this spin.
          await pause(retryMs);
          retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
        }
      } catch (error) {
        if (stopped) return;
        options.logger.warn("kubernetes watch failed; retrying", { path, retryMs, error });
        await pause(retryMs);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      }
    }
  }

  void run();
  return {
    stop() {
      stopped = true;
      active?.abort();
      clearTimeout(retryTimer);
      wakeRetry?.();
    },
  };
}
