import { KubernetesObjectApi, Watch } from "@kubernetes/client-node";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "@berth/kit";

/** Which objects to follow: one kind in one namespace, narrowed by selectors. */
export interface CollectionSelection {
  /** e.g. `apps/v1` or `v1`. */
  apiVersion: string;
  kind: string;
  /** The URL plural, e.g. `deployments`. */
  plural: string;
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** Options of watchCollection. */
export interface WatchCollectionOptions extends CollectionSelection {
  kubeConfig: KubeConfig;
  /** Called with every object of the selection (by name) after the first list and after each change. */
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
  return `${root}/namespaces/${selection.namespace}/${selection.plural}`;
}

/**
 * Lists a collection, then watches it from the list's resourceVersion,
 * keeping a copy of every selected object and reporting each change. A
 * watch that ends (server timeout, inactivity) resumes where it stopped;
 * one whose resourceVersion is too old (410 Expired) lists again; failures
 * retry with backoff. Event-driven: nothing polls.
 */
export function watchCollection(options: WatchCollectionOptions): CollectionWatch {
  const client = KubernetesObjectApi.makeApiClient(options.kubeConfig);
  const watch = new Watch(options.kubeConfig);
  const objects = new Map<string, KubernetesObject>();
  const path = collectionPath(options);
  const firstRetryMs = options.retryMs ?? 500;
  let stopped = false;
  let active: AbortController | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let wakeRetry: (() => void) | undefined;

  async function list(): Promise<string> {
    const result = await client.list(options.apiVersion, options.kind, options.namespace, undefined, undefined, undefined, options.fieldSelector, options.labelSelector);
    objects.clear();
    for (const item of result.items) objects.set(item.metadata!.name!, item);
    if (!stopped) options.onChange(objects);
    return result.metadata?.resourceVersion ?? "";
  }

  /** Follows one watch stream; resolves with where to resume, or undefined when the history is gone and a new list is due. */
  function follow(resourceVersion: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      let latest = resourceVersion;
      let expired = false;
      let failure: Error | undefined;
      const onEvent = (type: string, object: KubernetesObject & { code?: number; message?: string }) => {
        if (stopped) return;
        if (type === "ERROR") {
          if (object.code === 410) expired = true;
          else failure = new Error(`watch of ${path} failed: ${object.message ?? JSON.stringify(object)}`);
          active?.abort();
          return;
        }
        latest = object.metadata?.resourceVersion ?? latest;
        if (type === "BOOKMARK") return;
        const name = object.metadata?.name;
        if (name === undefined) return;
        if (type === "DELETED") objects.delete(name);
        else objects.set(name, object);
        options.onChange(objects);
      };
      const onDone = (error: unknown) => {
        if (failure) reject(failure);
        else if (expired) resolve(undefined);
        // The client ends an idle stream with a TimeoutError: resume like any other end.
        else if (error && !(error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError"))) reject(error);
        else resolve(latest);
      };
      const query = { resourceVersion, allowWatchBookmarks: true, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector };
      watch.watch(path, query, onEvent, onDone).then(
        (controller) => {
          active = controller;
          if (stopped) controller.abort();
        },
        reject,
      );
    });
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      wakeRetry = resolve;
      retryTimer = setTimeout(resolve, ms);
    });
  }

  async function run(): Promise<void> {
    let resourceVersion: string | undefined;
    let retryMs = firstRetryMs;
    while (!stopped) {
      try {
        resourceVersion ??= await list();
        if (stopped) return;
        resourceVersion = await follow(resourceVersion);
        retryMs = firstRetryMs;
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
