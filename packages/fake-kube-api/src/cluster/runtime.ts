import { randomInt } from "node:crypto";
import { isJsonObject, type JsonObject } from "../patch.js";
import { apiVersionOf, type KindRegistry, type ResourceKind } from "../registry.js";
import { StatusError } from "../status.js";
import type { ObjectStore, WriteOptions } from "../store.js";
import type { ChangeEvent } from "../watch.js";

/**
 * The machinery the simulated controllers share: typed access to the store
 * (writes bypass client admission, as controllers' writes pass it on a real
 * cluster by construction) and a work queue per controller fed by the
 * store's change log, like client-go informers feeding workqueues.
 */
export interface ClusterKinds {
  namespace: ResourceKind;
  node: ResourceKind;
  pod: ResourceKind;
  service: ResourceKind;
  secret: ResourceKind;
  endpointSlice: ResourceKind;
  replicaSet: ResourceKind;
  deployment: ResourceKind;
  statefulSet: ResourceKind;
  job: ResourceKind;
  hpa: ResourceKind;
  ingress: ResourceKind;
  certificate: ResourceKind;
}

/** What controllers read and write through. */
export interface Cluster {
  kinds: ClusterKinds;
  get(kind: ResourceKind, namespace: string | undefined, name: string): JsonObject | undefined;
  list(kind: ResourceKind, namespace?: string): JsonObject[];
  create(kind: ResourceKind, object: JsonObject, manager: string): JsonObject;
  update(kind: ResourceKind, object: JsonObject, manager: string): JsonObject;
  updateStatus(kind: ResourceKind, object: JsonObject, manager: string): JsonObject;
  remove(kind: ResourceKind, namespace: string | undefined, name: string, gracePeriodSeconds?: number): void;
}

/** One simulated controller: which changes wake it and how it reconciles one `namespace/name` key. */
export interface Controller {
  name: string;
  triggers: { kind: ResourceKind; keys(event: ChangeEvent): string[] }[];
  /** Brings the world closer to the object's spec; a number asks to be run again after that many ms. */
  reconcile(key: string): number | undefined;
}

/** `namespace/name` of an object. */
export function keyOf(object: JsonObject): string {
  const metadata = metaOf(object);
  return `${String(metadata.namespace ?? "")}/${String(metadata.name)}`;
}

/** Splits a key made by `keyOf`. */
export function splitKey(key: string): [namespace: string, name: string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

export function metaOf(object: JsonObject): JsonObject {
  return isJsonObject(object.metadata) ? object.metadata : {};
}

export function labelsOf(object: JsonObject): Record<string, string> {
  const labels = metaOf(object).labels;
  return isJsonObject(labels) ? (labels as Record<string, string>) : {};
}

/** The controller owner reference of an object, if it has one. */
export function controllerOf(object: JsonObject): { kind: string; name: string; uid: string } | undefined {
  const references = metaOf(object).ownerReferences;
  const owner = Array.isArray(references) ? references.find((reference: JsonObject) => reference.controller === true) : undefined;
  return owner as { kind: string; name: string; uid: string } | undefined;
}

/** An owner reference marking `owner` (of `kind`) as the controller of a dependent. */
export function ownerReferenceTo(kind: ResourceKind, owner: JsonObject): JsonObject {
  const metadata = metaOf(owner);
  return { apiVersion: apiVersionOf(kind), kind: kind.kind, name: metadata.name, uid: metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** Keys of the controller owner of an event's object when the owner is of `ownerKind`. */
export function ownerKeys(ownerKind: string): (event: ChangeEvent) => string[] {
  return (event) => {
    const owner = controllerOf(event.object);
    return owner?.kind === ownerKind ? [`${String(metaOf(event.object).namespace)}/${owner.name}`] : [];
  };
}

export const ownKey = (event: ChangeEvent): string[] => [keyOf(event.object)];

const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";

/** The 5-character random suffix generateName adds. */
export function randomSuffix(): string {
  return Array.from({ length: 5 }, () => suffixAlphabet[randomInt(suffixAlphabet.length)]).join("");
}

export function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Store access for controllers. */
export function clusterOf(store: ObjectStore, registry: KindRegistry): Cluster {
  const find = (apiVersion: string, kind: string) => {
    const found = registry.byKind(apiVersion, kind);
    if (found === undefined) throw new Error(`the fake cluster needs ${apiVersion} ${kind}`);
    return found;
  };
  const options = (manager: string, subresource?: "status"): WriteOptions => ({ manager, dryRun: false, ...(subresource ? { subresource } : {}) });
  return {
    kinds: {
      namespace: find("v1", "Namespace"),
      node: find("v1", "Node"),
      pod: find("v1", "Pod"),
      service: find("v1", "Service"),
      secret: find("v1", "Secret"),
      endpointSlice: find("discovery.k8s.io/v1", "EndpointSlice"),
      replicaSet: find("apps/v1", "ReplicaSet"),
      deployment: find("apps/v1", "Deployment"),
      statefulSet: find("apps/v1", "StatefulSet"),
      job: find("batch/v1", "Job"),
      hpa: find("autoscaling/v2", "HorizontalPodAutoscaler"),
      ingress: find("networking.k8s.io/v1", "Ingress"),
      certificate: find("cert-manager.io/v1", "Certificate"),
    },
    get(kind, namespace, name) {
      try {
        return store.get(kind, kind.namespaced ? namespace : undefined, name);
      } catch (error) {
        if (error instanceof StatusError && error.code === 404) return undefined;
        throw error;
      }
    },
    list: (kind, namespace) => store.select(kind, namespace === undefined ? {} : { namespace }),
    create: (kind, object, manager) => store.create(kind, metaOf(object).namespace as string | undefined, object, options(manager)),
    update: (kind, object, manager) =>
      store.replace(kind, metaOf(object).namespace as string | undefined, metaOf(object).name as string, object, options(manager)),
    updateStatus: (kind, object, manager) =>
      store.replace(kind, metaOf(object).namespace as string | undefined, metaOf(object).name as string, object, options(manager, "status")),
    remove(kind, namespace, name, gracePeriodSeconds) {
      try {
        store.delete(kind, namespace, name, gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }, options("kube-controller-manager"));
      } catch (error) {
        if (!(error instanceof StatusError && error.code === 404)) throw error;
      }
    },
  };
}

/** Running controllers; `stop` cancels every queued and delayed reconcile. */
export interface ControllerRuntime {
  /** Queues a reconcile, e.g. from a test hook that changed what a controller simulates. */
  enqueue(controller: string, key: string): void;
  /** Errors reconciles threw (they are retried), newest last, for debugging tests. */
  readonly errors: { controller: string; key: string; message: string }[];
  stop(): void;
}

/** Subscribes every controller to its triggers and runs reconciles one at a time, off the write path. */
export function runControllers(store: ObjectStore, controllers: readonly Controller[]): ControllerRuntime {
  const dirty = new Map<string, Set<string>>(controllers.map((controller) => [controller.name, new Set()]));
  const byName = new Map(controllers.map((controller) => [controller.name, controller]));
  const timers = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  const errors: ControllerRuntime["errors"] = [];
  let scheduled = false;
  let stopped = false;

  const drain = () => {
    scheduled = false;
    for (const [name, keys] of dirty) {
      const batch = [...keys];
      keys.clear();
      for (const key of batch) {
        if (stopped) return;
        let again: number | undefined;
        try {
          again = byName.get(name)!.reconcile(key);
        } catch (error) {
          errors.push({ controller: name, key, message: error instanceof Error ? error.message : String(error) });
          if (errors.length > 100) errors.shift();
          again = 100;
        }
        if (again !== undefined) later(name, key, again);
      }
    }
  };
  const enqueue = (name: string, key: string) => {
    if (stopped) return;
    dirty.get(name)?.add(key);
    if (!scheduled) {
      scheduled = true;
      setImmediate(drain);
    }
  };
  /** One delayed reconcile per controller and key: the sooner request wins. */
  const later = (name: string, key: string, delayMs: number) => {
    const id = `${name}\n${key}`;
    const at = Date.now() + delayMs;
    const pending = timers.get(id);
    if (pending !== undefined && pending.at <= at) return;
    if (pending !== undefined) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      timers.delete(id);
      enqueue(name, key);
    }, delayMs);
    timers.set(id, { timer, at });
  };
  const unsubscribes = controllers.flatMap((controller) =>
    controller.triggers.map((trigger) =>
      store.log.subscribe(`${trigger.kind.group}/${trigger.kind.version}/${trigger.kind.plural}`, (event) => {
        for (const key of trigger.keys(event)) enqueue(controller.name, key);
      }),
    ),
  );
  return {
    enqueue,
    errors,
    stop() {
      stopped = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      for (const { timer } of timers.values()) clearTimeout(timer);
      timers.clear();
    },
  };
}
