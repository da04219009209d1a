import { canonicalJson } from "@berth/kit/contract";
import { isJsonObject, type JsonObject } from "./patch.js";

/**
 * A path into an object in the managedFields vocabulary: `f:<field>` for a
 * map/struct field, `k:<json>` for the element of an associative list with
 * that key, `v:<json>` for the element of a set.
 */
export type FieldPath = readonly string[];

/** A set of field paths, keyed by the JSON of each path. */
export type FieldSet = Map<string, FieldPath>;

/** What a flattened path holds: the canonical JSON of a leaf, or `element` for a list element. */
export const element = Symbol("element");

/** Every path of an object with what it holds, as produced by `flatten`. */
export type FlatObject = Map<string, { path: FieldPath; value: string | typeof element }>;

/** The key of a path in a FieldSet or FlatObject. */
export function pathKey(path: FieldPath): string {
  return JSON.stringify(path);
}

/**
 * Merge keys of the associative lists in the built-in kinds, by field name.
 * The real server reads them from its OpenAPI schema; a field-name table
 * covers what berth emits. Every other list is atomic (replaced whole), which
 * is also what a custom resource without list-type markers gets.
 */
const associativeListKeys: Record<string, readonly string[]> = {
  containers: ["name"],
  initContainers: ["name"],
  ephemeralContainers: ["name"],
  env: ["name"],
  volumes: ["name"],
  imagePullSecrets: ["name"],
  volumeMounts: ["mountPath"],
  volumeDevices: ["devicePath"],
  conditions: ["type"],
  ownerReferences: ["uid"],
  hostAliases: ["ip"],
  topologySpreadConstraints: ["topologyKey", "whenUnsatisfiable"],
};

const setLists = new Set(["finalizers"]);

/** Whether the list under `fieldName` is a set of scalars (merged by union). */
export function isSetList(fieldName: string): boolean {
  return setLists.has(fieldName);
}

/** How a list merges: atomically, by key, or as a set of scalars. */
export type ListShape = { type: "atomic" } | { type: "map"; keys: readonly string[] } | { type: "set" };

/**
 * The merge keys of the list stored under `fieldName` (the first is the
 * strategic-merge-patch key), or undefined for a list merged atomically.
 */
export function mergeKeysOf(fieldName: string, list: readonly unknown[]): readonly string[] | undefined {
  if (fieldName === "ports") {
    // Container ports are keyed by containerPort, Service ports by port; both with protocol.
    return list.some((item) => isJsonObject(item) && "containerPort" in item) ? ["containerPort", "protocol"] : ["port", "protocol"];
  }
  return associativeListKeys[fieldName];
}

/** The merge strategy of the list stored under `fieldName`. */
export function listShape(fieldName: string | undefined, list: readonly unknown[]): ListShape {
  // An empty set or keyed list claims no elements, so it merges without dropping other managers' elements.
  if (fieldName === undefined) return { type: "atomic" };
  if (isSetList(fieldName) && list.every((item) => typeof item !== "object" || item === null)) return { type: "set" };
  const keys = mergeKeysOf(fieldName, list);
  if (keys === undefined || !list.every((item) => isJsonObject(item) && item[keys[0]!] !== undefined)) return { type: "atomic" };
  const seen = new Set(list.map((item) => elementKey(item as JsonObject, keys)));
  return seen.size === list.length ? { type: "map", keys } : { type: "atomic" };
}

/** The `k:` path element of an associative-list element: its key fields as sorted JSON. */
export function elementKey(item: JsonObject, keys: readonly string[]): string {
  const key: JsonObject = {};
  for (const name of keys) if (item[name] !== undefined) key[name] = item[name];
  return `k:${canonicalJson(key)}`;
}

function flattenInto(value: unknown, path: FieldPath, fieldName: string | undefined, out: FlatObject): void {
  if (isJsonObject(value)) {
    const entries = Object.entries(value).filter(([, child]) => child !== null && child !== undefined);
    if (entries.length === 0 && path.length > 0) out.set(pathKey(path), { path, value: "{}" });
    for (const [name, child] of entries) flattenInto(child, [...path, `f:${name}`], name, out);
    return;
  }
  if (Array.isArray(value)) {
    const shape = listShape(fieldName, value);
    if (shape.type === "map") {
      for (const item of value as JsonObject[]) {
        const itemPath = [...path, elementKey(item, shape.keys)];
        out.set(pathKey(itemPath), { path: itemPath, value: element });
        flattenInto(item, itemPath, undefined, out);
      }
    } else if (shape.type === "set") {
      for (const item of value) {
        const itemPath = [...path, `v:${JSON.stringify(item)}`];
        out.set(pathKey(itemPath), { path: itemPath, value: element });
      }
    } else {
      out.set(pathKey(path), { path, value: canonicalJson(value) });
    }
    return;
  }
  out.set(pathKey(path), { path, value: canonicalJson(value) });
}

/** Every owned path of `value` (leaves and list elements) with what it holds. */
export function flatten(value: JsonObject): FlatObject {
  const out: FlatObject = new Map();
  flattenInto(value, [], undefined, out);
  return out;
}

/** The paths of a flattened object as a FieldSet. */
export function fieldSetOf(flat: FlatObject): FieldSet {
  return new Map([...flat].map(([key, { path }]) => [key, path]));
}

/** Reads a managedFields `fieldsV1` tree into a FieldSet. */
export function fromFieldsV1(tree: unknown): FieldSet {
  const set: FieldSet = new Map();
  const walk = (node: unknown, path: FieldPath) => {
    if (!isJsonObject(node)) return;
    const children = Object.keys(node).filter((name) => name !== ".");
    if (path.length > 0 && (children.length === 0 || "." in node)) set.set(pathKey(path), path);
    for (const name of children) walk(node[name], [...path, name]);
  };
  walk(tree, []);
  return set;
}

/** Writes a FieldSet as a managedFields `fieldsV1` tree (`.` marks a member that also has children). */
export function toFieldsV1(set: FieldSet): JsonObject {
  const root: JsonObject = {};
  const members: JsonObject[] = [];
  for (const path of set.values()) {
    let node = root;
    for (const part of path) node = (node[part] ??= {}) as JsonObject;
    members.push(node);
  }
  for (const node of members) if (Object.keys(node).length > 0) node["."] = {};
  return sortTree(root);
}

function sortTree(node: JsonObject): JsonObject {
  return Object.fromEntries(
    Object.keys(node)
      .sort()
      .map((key) => [key, sortTree(node[key] as JsonObject)]),
  );
}

/** Finds the index of the list element a `k:` or `v:` path element names. */
function findElement(list: unknown[], part: string): number {
  if (part.startsWith("v:")) {
    const wanted = part.slice(2);
    return list.findIndex((item) => JSON.stringify(item) === wanted);
  }
  const key = JSON.parse(part.slice(2)) as JsonObject;
  return list.findIndex((item) => isJsonObject(item) && Object.entries(key).every(([name, value]) => canonicalJson(item[name]) === canonicalJson(value)));
}

/** The value at `path`, or undefined. */
function valueAt(root: unknown, path: FieldPath): unknown {
  let node = root;
  for (const part of path) {
    if (part.startsWith("f:")) node = isJsonObject(node) ? node[part.slice(2)] : undefined;
    else node = Array.isArray(node) ? node[findElement(node, part)] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/**
 * Removes the field or list element at `path` from `root` in place, then
 * removes maps and lists that this emptied, unless `keep` says the emptied
 * container's own path is still owned by someone.
 */
export function removePath(root: JsonObject, path: FieldPath, keep: (path: FieldPath) => boolean): void {
  for (let depth = path.length; depth > 0; depth--) {
    const parent = valueAt(root, path.slice(0, depth - 1));
    const part = path[depth - 1]!;
    if (part.startsWith("f:") && isJsonObject(parent)) delete parent[part.slice(2)];
    else if (!part.startsWith("f:") && Array.isArray(parent)) {
      const index = findElement(parent, part);
      if (index >= 0) parent.splice(index, 1);
    } else return;
    const isEmpty = Array.isArray(parent) ? parent.length === 0 : Object.keys(parent).length === 0;
    if (depth === 1 || !isEmpty || keep(path.slice(0, depth - 1))) return;
  }
}

/**
 * Merges an applied configuration into a live value the way server-side
 * apply does: maps merge field by field, associative lists merge element by
 * key, sets take the union, everything else is replaced by the configuration.
 */
export function mergeApplied(live: unknown, config: unknown, fieldName?: string): unknown {
  if (isJsonObject(config)) {
    const result: JsonObject = isJsonObject(live) ? { ...live } : {};
    for (const [name, value] of Object.entries(config)) {
      if (value === null || value === undefined) continue;
      result[name] = mergeApplied(result[name], value, name);
    }
    return result;
  }
  if (Array.isArray(config) && Array.isArray(live)) {
    const shape = listShape(fieldName, config);
    const liveShape = listShape(fieldName, live);
    if (shape.type === "map" && (live.length === 0 || liveShape.type === "map")) {
      const result = [...live] as JsonObject[];
      for (const item of config as JsonObject[]) {
        const index = findElement(result, elementKey(item, shape.keys));
        if (index >= 0) result[index] = mergeApplied(result[index], item) as JsonObject;
        else result.push(structuredClone(item));
      }
      return result;
    }
    if (shape.type === "set" && (live.length === 0 || liveShape.type === "set")) {
      return [...live, ...config.filter((item) => !live.some((existing) => JSON.stringify(existing) === JSON.stringify(item)))];
    }
  }
  return structuredClone(config);
}

/** Renders a path the way conflict messages do: `.spec.containers[name="web"].image`. */
export function renderPath(path: FieldPath): string {
  return path
    .map((part) => {
      if (part.startsWith("f:")) return `.${part.slice(2)}`;
      if (part.startsWith("v:")) return `[=${part.slice(2)}]`;
      const key = JSON.parse(part.slice(2)) as JsonObject;
      return `[${Object.entries(key)
        .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
        .join(",")}]`;
    })
    .join("");
}
