import { randomInt, randomUUID } from "node:crypto";
import { canonicalJson } from "@berth/kit/contract";
import { matchesFields, matchesLabels, type FieldRequirement, type LabelSelector } from "./label-selector.js";
import { applyJsonPatch, applyMergePatch, isJsonObject, type JsonObject } from "./patch.js";
import { apiVersionOf, qualifiedKind, qualifiedResource, type KindRegistry, type ResourceKind } from "./registry.js";
import { applyConfiguration, recordUpdate, type WriteRequest, type WriteScope } from "./server-side-apply.js";
import { StatusError, successStatus, type Status } from "./status.js";
import { applyStrategicMergePatch } from "./strategic-merge-patch.js";
import { validateMetadata, type ObjectValidator, type SchemaViolation } from "./validate.js";
import { createEventLog, type ChangeEvent, type EventLog } from "./watch.js";

/** How a write is made, beyond its body. */
export interface WriteOptions {
  /** The field manager recorded in managedFields. */
  manager: string;
  /** `dryRun=All`: run every check and return the result without storing it. */
  dryRun: boolean;
  /** Set when the request targets the `/status` subresource. */
  subresource?: "status";
  /** The kind's schema validator, loaded before the write so the write itself never yields. */
  validator?: ObjectValidator;
  /**
   * Admission for writes from API clients (controllers inside the fake skip
   * it): immutable fields and unknown fields. Returns violations (422) or
   * throws a StatusError; may prune `candidate`.
   */
  admit?: (old: JsonObject | undefined, candidate: JsonObject) => SchemaViolation[];
}

/** Which objects a list, watch or deletecollection covers. */
export interface Selection {
  /** Undefined: every namespace (or a cluster-scoped kind). */
  namespace?: string;
  labelSelector?: LabelSelector;
  fieldSelector?: FieldRequirement[];
}

/** A page of a list. */
export interface ListPage {
  items: JsonObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** The patch formats PATCH accepts besides server-side apply. */
export type PatchType = "merge" | "strategic" | "json";

/** The DeleteOptions fields the fake honours. */
export interface DeletePreconditions {
  uid?: string;
  resourceVersion?: string;
  /** For Pods on a node: 0 removes at once; otherwise the pod is marked terminating and the node's kubelet removes it. */
  gracePeriodSeconds?: number;
}

/** The in-memory object store of one fake API server, with the semantics of each verb. */
export interface ObjectStore {
  readonly log: EventLog;
  /** The latest resourceVersion handed out. */
  resourceVersion(): number;
  get(kind: ResourceKind, namespace: string | undefined, name: string): JsonObject;
  list(kind: ResourceKind, selection: Selection, page?: { limit?: number; continueToken?: string }): ListPage;
  /** Every object of a kind in the selection, unpaged (for watches and deletecollection). */
  select(kind: ResourceKind, selection: Selection): JsonObject[];
  create(kind: ResourceKind, namespace: string | undefined, body: unknown, options: WriteOptions): JsonObject;
  replace(kind: ResourceKind, namespace: string | undefined, name: string, body: unknown, options: WriteOptions): JsonObject;
  patch(kind: ResourceKind, namespace: string | undefined, name: string, type: PatchType, patch: unknown, options: WriteOptions): JsonObject;
  /** Server-side apply; `created` tells whether the object is new (HTTP 201). */
  apply(
    kind: ResourceKind,
    namespace: string | undefined,
    name: string,
    body: unknown,
    options: WriteOptions & { force: boolean },
  ): { object: JsonObject; created: boolean };
  /** Deletes now (a Success Status), or marks the object deleted while finalizers remain (the object). */
  delete(kind: ResourceKind, namespace: string | undefined, name: string, preconditions: DeletePreconditions, options: WriteOptions): Status | JsonObject;
  deleteCollection(kind: ResourceKind, selection: Selection, options: WriteOptions): JsonObject[];
  /** Every stored object with its kind, for test assertions. */
  all(): { kind: ResourceKind; object: JsonObject }[];
}

/** Options of `createObjectStore`. */
export interface ObjectStoreOptions {
  registry: KindRegistry;
  /** Refuse namespaced objects whose Namespace does not exist (404), like admission in a real cluster. */
  requireNamespaces: boolean;
  /** How many changes the watch history keeps. */
  watchHistoryLimit: number;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

function metadataOf(object: JsonObject): JsonObject {
  if (!isJsonObject(object.metadata)) object.metadata = {};
  return object.metadata as JsonObject;
}

/** The object without metadata and status: a change here bumps metadata.generation. */
function specPart(object: JsonObject): string {
  const { metadata: _metadata, status: _status, ...rest } = object;
  return canonicalJson(rest);
}

/** The object as compared for a no-op write: managedFields timestamps do not count. */
function comparable(object: JsonObject): string {
  const metadata = metadataOf(structuredClone(object));
  const copy = { ...object, metadata };
  if (Array.isArray(metadata.managedFields)) metadata.managedFields = metadata.managedFields.map((entry: JsonObject) => ({ ...entry, time: undefined }));
  return canonicalJson(copy);
}

/** Whether `object` is in the namespace and matches the selectors of `selection`. */
export function inSelection(selection: Selection, object: JsonObject): boolean {
  const metadata = isJsonObject(object.metadata) ? object.metadata : {};
  if (selection.namespace !== undefined && metadata.namespace !== selection.namespace) return false;
  if (selection.labelSelector && !matchesLabels(selection.labelSelector, metadata.labels as Record<string, string> | undefined)) return false;
  return !selection.fieldSelector || matchesFields(selection.fieldSelector, object);
}

/**
 * The grace period a Pod delete gets: a pod bound to a node terminates
 * gracefully (the kubelet removes it when its containers have stopped), as
 * on a real cluster; everything else (and `gracePeriodSeconds: 0`) goes at once.
 */
function gracefulPodDeletion(kind: ResourceKind, pod: JsonObject, requested: number | undefined): number {
  if (kind.group !== "" || kind.kind !== "Pod") return 0;
  const spec = isJsonObject(pod.spec) ? pod.spec : {};
  const phase = isJsonObject(pod.status) ? pod.status.phase : undefined;
  if (typeof spec.nodeName !== "string" || phase === "Succeeded" || phase === "Failed") return 0;
  return requested ?? (typeof spec.terminationGracePeriodSeconds === "number" ? spec.terminationGracePeriodSeconds : 30);
}

const generateNameAlphabet = "bcdfghjklmnpqrstvwxz2456789";

/** Creates an empty store for the kinds in `settings.registry`. */
export function createObjectStore(settings: ObjectStoreOptions): ObjectStore {
  let counter = 0;
  const log = createEventLog(settings.watchHistoryLimit, counter);
  const collections = new Map<string, Map<string, JsonObject>>();
  const collectionKey = (kind: ResourceKind) => `${kind.group}/${kind.version}/${kind.plural}`;
  const objectKey = (namespace: string | undefined, name: string) => `${namespace ?? ""}/${name}`;
  const collection = (kind: ResourceKind) => {
    let found = collections.get(collectionKey(kind));
    if (found === undefined) collections.set(collectionKey(kind), (found = new Map()));
    return found;
  };
  const describe = (kind: ResourceKind, name: string) => `${qualifiedResource(kind)} ${JSON.stringify(name)}`;
  const find = (kind: ResourceKind, namespace: string | undefined, name: string) => collection(kind).get(objectKey(namespace, name));
  const require = (kind: ResourceKind, namespace: string | undefined, name: string) => {
    const found = find(kind, namespace, name);
    if (found === undefined) throw new StatusError("NotFound", `${describe(kind, name)} not found`, { name, group: kind.group, kind: kind.plural });
    return found;
  };

  const publish = (kind: ResourceKind, type: ChangeEvent["type"], object: JsonObject, previous?: JsonObject) => {
    log.publish({
      type,
      resourceVersion: counter,
      collection: collectionKey(kind),
      object: structuredClone(object),
      ...(previous ? { previous: structuredClone(previous) } : {}),
    });
  };

  const remove = (kind: ResourceKind, object: JsonObject) => {
    const metadata = metadataOf(object);
    collection(kind).delete(objectKey(metadata.namespace as string | undefined, metadata.name as string));
    counter++;
    const deleted = { ...object, metadata: { ...metadata, resourceVersion: String(counter) } };
    publish(kind, "DELETED", deleted);
    return deleted;
  };

  /** Checks the body of a write against the URL it was sent to. */
  const checkBody = (kind: ResourceKind, namespace: string | undefined, name: string | undefined, body: unknown, requireTypeMeta: boolean): JsonObject => {
    if (!isJsonObject(body)) throw new StatusError("BadRequest", "the request body must be a JSON object");
    const object = structuredClone(body);
    const apiVersion = apiVersionOf(kind);
    if (requireTypeMeta && (object.apiVersion === undefined || object.kind === undefined))
      throw new StatusError("BadRequest", "apiVersion and kind must be set in the request body");
    if ((object.apiVersion ?? apiVersion) !== apiVersion || (object.kind ?? kind.kind) !== kind.kind) {
      throw new StatusError(
        "BadRequest",
        `the API version in the data (${String(object.apiVersion)}) and kind (${String(object.kind)}) do not match the endpoint (${apiVersion}, ${kind.kind})`,
      );
    }
    object.apiVersion = apiVersion;
    object.kind = kind.kind;
    const metadata = metadataOf(object);
    if (name !== undefined) {
      if (metadata.name !== undefined && metadata.name !== name)
        throw new StatusError("BadRequest", `the name of the object (${String(metadata.name)}) does not match the name on the URL (${name})`);
      metadata.name = name;
    }
    if (kind.namespaced) {
      if (metadata.namespace !== undefined && metadata.namespace !== "" && metadata.namespace !== namespace) {
        throw new StatusError("BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
      }
      metadata.namespace = namespace;
    } else {
      delete metadata.namespace;
    }
    return object;
  };

  const scopeOf = (kind: ResourceKind, options: WriteOptions): WriteScope => ({
    statusSubresource: kind.statusSubresource === true,
    ...(options.subresource ? { subresource: options.subresource } : {}),
  });
  const writeRequest = (kind: ResourceKind, options: WriteOptions): WriteRequest => ({
    manager: options.manager,
    apiVersion: apiVersionOf(kind),
    now: now(),
    scope: scopeOf(kind, options),
  });

  /** What a real server does to a new object before storing it: clear status the client may not set. */
  const prepareForCreate = (kind: ResourceKind, object: JsonObject, namespace: string | undefined) => {
    if (kind.namespaced && settings.requireNamespaces) {
      const namespaces = settings.registry.byKind("v1", "Namespace");
      if (namespaces === undefined || find(namespaces, undefined, namespace!) === undefined)
        throw new StatusError("NotFound", `namespaces ${JSON.stringify(namespace)} not found`, { name: namespace!, kind: "namespaces" });
    }
    if (kind.statusSubresource) delete object.status;
    if (kind.group === "" && kind.kind === "Namespace") object.status = { phase: "Active" };
  };

  /** Completes server-owned metadata, validates, and stores `candidate` unless the write changes nothing. */
  const commit = (kind: ResourceKind, old: JsonObject | undefined, candidate: JsonObject, options: WriteOptions): JsonObject => {
    const metadata = metadataOf(candidate);
    if (old) {
      const oldMetadata = metadataOf(old);
      for (const field of ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"]) {
        if (oldMetadata[field] === undefined) delete metadata[field];
        else metadata[field] = oldMetadata[field];
      }
      metadata.generation = (oldMetadata.generation as number) + (specPart(old) === specPart(candidate) ? 0 : 1);
    } else {
      for (const field of ["uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"]) delete metadata[field];
      metadata.uid = randomUUID();
      metadata.creationTimestamp = now();
      metadata.generation = 1;
    }
    const name = metadata.name as string;
    const violations = [...(options.admit?.(old, candidate) ?? []), ...validateMetadata(candidate), ...(options.validator?.(candidate) ?? [])];
    if (violations.length > 0) {
      const rendered = violations.map((violation) => `${violation.field}: ${violation.message}`);
      const message = `${qualifiedKind(kind)} ${JSON.stringify(name)} is invalid: ${rendered.length === 1 ? rendered[0] : `[${rendered.join(", ")}]`}`;
      throw new StatusError("Invalid", message, {
        name,
        group: kind.group,
        kind: kind.kind,
        causes: violations.map((violation) => ({ reason: "FieldValueInvalid", message: violation.message, field: violation.field })),
      });
    }
    if (old && comparable(old) === comparable(candidate)) return structuredClone(old);
    if (options.dryRun) return candidate;
    const finalizers = metadata.finalizers;
    const oldFinalizers = old ? metadataOf(old).finalizers : undefined;
    // The last finalizer removed from an object marked for deletion lets it go.
    if (
      old &&
      metadata.deletionTimestamp !== undefined &&
      Array.isArray(oldFinalizers) &&
      oldFinalizers.length > 0 &&
      (!Array.isArray(finalizers) || finalizers.length === 0)
    ) {
      return remove(kind, candidate);
    }
    counter++;
    metadata.resourceVersion = String(counter);
    collection(kind).set(objectKey(metadata.namespace as string | undefined, name), candidate);
    publish(kind, old ? "MODIFIED" : "ADDED", candidate, old);
    return structuredClone(candidate);
  };

  /** The shared tail of PUT and the non-apply patches: `body` is the complete desired object. */
  const updateFrom = (kind: ResourceKind, old: JsonObject, body: JsonObject, options: WriteOptions): JsonObject => {
    const requested = metadataOf(body).resourceVersion;
    if (requested !== undefined && requested !== "" && requested !== metadataOf(old).resourceVersion) {
      throw new StatusError(
        "Conflict",
        `Operation cannot be fulfilled on ${describe(kind, metadataOf(old).name as string)}: the object has been modified; please apply your changes to the latest version and try again`,
        {
          name: metadataOf(old).name as string,
          group: kind.group,
          kind: kind.plural,
        },
      );
    }
    let candidate: JsonObject;
    if (options.subresource === "status") {
      candidate = { ...structuredClone(old), status: body.status };
      if (body.status === undefined) delete candidate.status;
    } else {
      candidate = body;
      if (kind.statusSubresource) {
        if (old.status === undefined) delete candidate.status;
        else candidate.status = structuredClone(old.status);
      }
    }
    metadataOf(candidate).managedFields = metadataOf(old).managedFields;
    return commit(kind, old, recordUpdate(old, candidate, writeRequest(kind, options)), options);
  };

  const selected = (kind: ResourceKind, selection: Selection) =>
    [...collection(kind).values()]
      .filter((object) => inSelection(selection, object))
      .sort((a, b) =>
        objectKey(metadataOf(a).namespace as string | undefined, metadataOf(a).name as string).localeCompare(
          objectKey(metadataOf(b).namespace as string | undefined, metadataOf(b).name as string),
        ),
      );

  const store: ObjectStore = {
    log,
    resourceVersion: () => counter,
    get: (kind, namespace, name) => structuredClone(require(kind, namespace, name)),
    select: (kind, selection) => selected(kind, selection).map((object) => structuredClone(object)),
    list(kind, selection, page = {}) {
      let items = selected(kind, selection);
      if (page.continueToken) {
        let after: string;
        try {
          after = (JSON.parse(Buffer.from(page.continueToken, "base64url").toString()) as { after: string }).after;
        } catch {
          throw new StatusError("BadRequest", "invalid continue token");
        }
        items = items.filter((object) => objectKey(metadataOf(object).namespace as string | undefined, metadataOf(object).name as string) > after);
      }
      const result: ListPage = { items: [], resourceVersion: String(counter) };
      if (page.limit !== undefined && page.limit > 0 && items.length > page.limit) {
        const last = items[page.limit - 1]!;
        result.continue = Buffer.from(
          JSON.stringify({ after: objectKey(metadataOf(last).namespace as string | undefined, metadataOf(last).name as string) }),
        ).toString("base64url");
        result.remainingItemCount = items.length - page.limit;
        items = items.slice(0, page.limit);
      }
      result.items = items.map((object) => structuredClone(object));
      return result;
    },
    create(kind, namespace, body, options) {
      const object = checkBody(kind, namespace, undefined, body, false);
      const metadata = metadataOf(object);
      if (metadata.resourceVersion !== undefined && metadata.resourceVersion !== "")
        throw new StatusError("BadRequest", "resourceVersion should not be set on objects to be created");
      if (metadata.name === undefined || metadata.name === "") {
        if (typeof metadata.generateName !== "string" || metadata.generateName === "") {
          throw new StatusError("Invalid", `${qualifiedKind(kind)} "" is invalid: metadata.name: Required value: name or generateName is required`, {
            group: kind.group,
            kind: kind.kind,
            causes: [{ reason: "FieldValueRequired", message: "Required value: name or generateName is required", field: "metadata.name" }],
          });
        }
        do {
          metadata.name = metadata.generateName + Array.from({ length: 5 }, () => generateNameAlphabet[randomInt(generateNameAlphabet.length)]).join("");
        } while (find(kind, namespace, metadata.name as string) !== undefined);
      }
      const name = metadata.name as string;
      if (find(kind, namespace, name) !== undefined)
        throw new StatusError("AlreadyExists", `${describe(kind, name)} already exists`, { name, group: kind.group, kind: kind.plural });
      prepareForCreate(kind, object, namespace);
      delete metadata.managedFields;
      return commit(kind, undefined, recordUpdate(undefined, object, writeRequest(kind, options)), options);
    },
    replace(kind, namespace, name, body, options) {
      const old = require(kind, namespace, name);
      return updateFrom(kind, old, checkBody(kind, namespace, name, body, false), options);
    },
    patch(kind, namespace, name, type, patch, options) {
      const old = require(kind, namespace, name);
      const patched = type === "json" ? applyJsonPatch(old, patch) : type === "strategic" ? applyStrategicMergePatch(old, patch) : applyMergePatch(old, patch);
      if (!isJsonObject(patched) || !isJsonObject(patched.metadata) || patched.metadata.name !== name)
        throw new StatusError("BadRequest", "a patch may not change metadata.name");
      return updateFrom(kind, old, checkBody(kind, namespace, name, patched, true), options);
    },
    apply(kind, namespace, name, body, options) {
      const config = checkBody(kind, namespace, name, body, true);
      const old = find(kind, namespace, name);
      if (old === undefined && options.subresource === "status") require(kind, namespace, name);
      const requested = metadataOf(config).resourceVersion;
      if (old && requested !== undefined && requested !== metadataOf(old).resourceVersion) {
        throw new StatusError(
          "Conflict",
          `Operation cannot be fulfilled on ${describe(kind, name)}: the object has been modified; please apply your changes to the latest version and try again`,
          { name, group: kind.group, kind: kind.plural },
        );
      }
      const merged = applyConfiguration(old, config, { ...writeRequest(kind, options), force: options.force });
      const metadata = metadataOf(merged);
      metadata.name = name;
      if (kind.namespaced) metadata.namespace = namespace;
      if (old === undefined) prepareForCreate(kind, merged, namespace);
      return { object: commit(kind, old, merged, options), created: old === undefined };
    },
    delete(kind, namespace, name, preconditions, options) {
      const old = require(kind, namespace, name);
      const metadata = metadataOf(old);
      if (preconditions.uid !== undefined && preconditions.uid !== metadata.uid) {
        throw new StatusError("Conflict", `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${String(metadata.uid)}`, {
          name,
          group: kind.group,
          kind: kind.plural,
        });
      }
      if (preconditions.resourceVersion !== undefined && preconditions.resourceVersion !== metadata.resourceVersion) {
        throw new StatusError(
          "Conflict",
          `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${String(metadata.resourceVersion)}`,
          { name, group: kind.group, kind: kind.plural },
        );
      }
      if (options.dryRun) return structuredClone(old);
      const grace = gracefulPodDeletion(kind, old, preconditions.gracePeriodSeconds);
      const finalizing = Array.isArray(metadata.finalizers) && metadata.finalizers.length > 0;
      if (finalizing || grace > 0) {
        if (metadata.deletionTimestamp !== undefined) return structuredClone(old);
        const marked = structuredClone(old);
        Object.assign(metadataOf(marked), { deletionTimestamp: now(), deletionGracePeriodSeconds: grace });
        counter++;
        metadataOf(marked).resourceVersion = String(counter);
        collection(kind).set(objectKey(namespace, name), marked);
        publish(kind, "MODIFIED", marked, old);
        return structuredClone(marked);
      }
      if (kind.group === "" && kind.kind === "Namespace") {
        // The namespace controller's job, done at once: everything in the namespace goes with it.
        for (const contained of settings.registry.all().filter((k) => k.namespaced)) {
          for (const object of selected(contained, { namespace: name })) remove(contained, object);
        }
      }
      remove(kind, old);
      return successStatus({ name, group: kind.group, kind: kind.plural, uid: metadata.uid as string });
    },
    deleteCollection(kind, selection, options) {
      return selected(kind, selection).map((object) => {
        const metadata = metadataOf(object);
        const result = store.delete(kind, metadata.namespace as string | undefined, metadata.name as string, {}, options);
        return result.kind === "Status" ? structuredClone(object) : (result as JsonObject);
      });
    },
    all: () => settings.registry.all().flatMap((kind) => selected(kind, {}).map((object) => ({ kind, object: structuredClone(object) }))),
  };
  return store;
}
