import {
  element,
  fieldSetOf,
  flatten,
  fromFieldsV1,
  mergeApplied,
  pathKey,
  removePath,
  renderPath,
  toFieldsV1,
  type FieldPath,
  type FieldSet,
} from "./field-set.js";
import { isJsonObject, type JsonObject } from "./patch.js";
import { StatusError, type StatusCause } from "./status.js";

/** One entry of `metadata.managedFields`. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: JsonObject;
  subresource?: string;
}

/** Which part of an object a write may change. */
export interface WriteScope {
  /** The kind has a `/status` subresource, so main-resource writes leave `.status` alone. */
  statusSubresource: boolean;
  /** Set when the request targets the `/status` subresource. */
  subresource?: "status";
}

/** Who writes and how: the identity managedFields records. */
export interface WriteRequest {
  manager: string;
  apiVersion: string;
  /** RFC 3339 time recorded on the writer's managedFields entry. */
  now: string;
  scope: WriteScope;
}

/** Metadata the server owns; no manager ever owns these fields. */
const serverMetadata = new Set([
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "selfLink",
  "generateName",
]);

/** The part of an object whose fields managers own for a write in `scope`. */
export function ownedView(object: JsonObject, scope: WriteScope): JsonObject {
  if (scope.subresource === "status") return object.status === undefined ? {} : { status: object.status };
  const view: JsonObject = {};
  for (const [name, value] of Object.entries(object)) {
    if (name === "apiVersion" || name === "kind" || (name === "status" && scope.statusSubresource)) continue;
    if (name === "metadata" && isJsonObject(value)) {
      const metadata = Object.fromEntries(Object.entries(value).filter(([field]) => !serverMetadata.has(field)));
      if (Object.keys(metadata).length > 0) view.metadata = metadata;
    } else {
      view[name] = value;
    }
  }
  return view;
}

interface Manager {
  manager: string;
  operation: "Apply" | "Update";
  subresource: string | undefined;
  apiVersion: string;
  time: string;
  fields: FieldSet;
}

function readManagers(object: JsonObject | undefined): Manager[] {
  const entries = isJsonObject(object?.metadata) ? object.metadata.managedFields : undefined;
  if (!Array.isArray(entries)) return [];
  return (entries as ManagedFieldsEntry[]).map((entry) => ({
    manager: entry.manager,
    operation: entry.operation,
    subresource: entry.subresource,
    apiVersion: entry.apiVersion,
    time: entry.time,
    fields: fromFieldsV1(entry.fieldsV1),
  }));
}

function writeManagers(managers: readonly Manager[]): ManagedFieldsEntry[] {
  return managers
    .filter((manager) => manager.fields.size > 0)
    .map((manager) => ({
      manager: manager.manager,
      operation: manager.operation,
      apiVersion: manager.apiVersion,
      time: manager.time,
      fieldsType: "FieldsV1",
      fieldsV1: toFieldsV1(manager.fields),
      ...(manager.subresource ? { subresource: manager.subresource } : {}),
    }));
}

/** Finds the writer's own entry, adding an empty one when it has none yet. */
function ownEntry(managers: Manager[], request: WriteRequest, operation: Manager["operation"]): Manager {
  const found = managers.find((m) => m.manager === request.manager && m.operation === operation && m.subresource === request.scope.subresource);
  if (found) return found;
  const created: Manager = {
    manager: request.manager,
    operation,
    subresource: request.scope.subresource,
    apiVersion: request.apiVersion,
    time: request.now,
    fields: new Map(),
  };
  managers.push(created);
  return created;
}

/** Every path that `managers` own, plus every ancestor of such a path. */
function ownedOrAncestor(managers: readonly Manager[]): Set<string> {
  const keys = new Set<string>();
  for (const manager of managers) {
    for (const path of manager.fields.values()) {
      for (let depth = 1; depth <= path.length; depth++) keys.add(pathKey(path.slice(0, depth)));
    }
  }
  return keys;
}

function setManagedFields(object: JsonObject, managers: readonly Manager[]): JsonObject {
  const metadata = isJsonObject(object.metadata) ? object.metadata : {};
  return { ...object, metadata: { ...metadata, managedFields: writeManagers(managers) } };
}

/** Options of one server-side apply request. */
export interface ApplyRequest extends WriteRequest {
  force: boolean;
}

/**
 * Server-side apply of `config` by `request.manager` onto `live` (undefined
 * when the object does not exist yet). Returns the merged object with its
 * new `metadata.managedFields`; the caller fills in the rest of the metadata.
 *
 * Follows structured-merge-diff for the common cases: the applier owns
 * exactly the fields of its configuration; a field it owned before and now
 * omits is removed unless another manager still owns it; changing a field
 * another manager owns is a 409 Conflict unless `force`, which takes the
 * field over. Setting a field to the value it already has shares ownership.
 */
export function applyConfiguration(live: JsonObject | undefined, config: JsonObject, request: ApplyRequest): JsonObject {
  const managers = readManagers(live);
  const base: JsonObject = live ?? { apiVersion: config.apiVersion, kind: config.kind, metadata: {} };
  const configView = ownedView(config, request.scope);
  const configFlat = flatten(configView);
  const merged = mergeApplied(structuredClone(base), configView) as JsonObject;
  const liveFlat = flatten(ownedView(base, request.scope));
  const mergedFlat = flatten(ownedView(merged, request.scope));

  const mine = ownEntry(managers, request, "Apply");
  const conflicts: { manager: Manager; path: FieldPath }[] = [];
  for (const other of managers) {
    if (other === mine) continue;
    for (const [key, path] of other.fields) {
      if (configFlat.has(key) && liveFlat.get(key)?.value !== mergedFlat.get(key)?.value) conflicts.push({ manager: other, path });
    }
  }
  if (conflicts.length > 0 && !request.force) throw conflictError(conflicts);
  for (const { manager, path } of conflicts) manager.fields.delete(pathKey(path));

  const previous = mine.fields;
  mine.fields = fieldSetOf(configFlat);
  mine.apiVersion = request.apiVersion;
  mine.time = request.now;
  const othersOwn = ownedOrAncestor(managers.filter((m) => m !== mine));
  const anyoneOwns = ownedOrAncestor(managers);
  // View paths are root paths too (the status view is { status }), so they address `merged` directly.
  for (const [key, path] of previous) {
    if (!mine.fields.has(key) && !othersOwn.has(key)) removePath(merged, path, (p) => anyoneOwns.has(pathKey(p)));
  }
  return setManagedFields(merged, managers);
}

function conflictError(conflicts: readonly { manager: Manager; path: FieldPath }[]): StatusError {
  const causes: StatusCause[] = conflicts.map(({ manager, path }) => ({
    reason: "FieldManagerConflict",
    message: `conflict with ${JSON.stringify(manager.manager)}${manager.operation === "Update" ? ` using ${manager.apiVersion}` : ""}`,
    field: renderPath(path),
  }));
  const lines = causes.map((cause) => `${cause.message}: ${cause.field}`);
  const message = `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}: ${lines.join("\n")}`;
  return new StatusError("Conflict", message, { causes });
}

/**
 * Ownership after a non-apply write (create, update, patch) by
 * `request.manager`: it takes every field it changed from whoever owned it
 * (updates never conflict), and removed fields leave every manager's set.
 * Returns `updated` with its new `metadata.managedFields`.
 */
export function recordUpdate(old: JsonObject | undefined, updated: JsonObject, request: WriteRequest): JsonObject {
  const managers = readManagers(old);
  const oldFlat = old ? flatten(ownedView(old, request.scope)) : flatten({});
  const newFlat = flatten(ownedView(updated, request.scope));
  const changed = [...newFlat].filter(([key, { value }]) => {
    const before = oldFlat.get(key)?.value;
    return before === undefined || (value !== element && before !== value);
  });
  const removed = [...oldFlat.keys()].filter((key) => !newFlat.has(key));
  const mine = ownEntry(managers, request, "Update");
  for (const manager of managers) {
    for (const key of removed) manager.fields.delete(key);
    if (manager !== mine) for (const [key] of changed) manager.fields.delete(key);
  }
  for (const [key, { path }] of changed) mine.fields.set(key, path);
  if (changed.length > 0) {
    mine.apiVersion = request.apiVersion;
    mine.time = request.now;
  }
  return setManagedFields(updated, managers);
}
