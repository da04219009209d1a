import { isSetList, mergeKeysOf } from "./field-set.js";
import { isJsonObject, type JsonObject } from "./patch.js";
import { StatusError } from "./status.js";

function sameScalar(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function mergeList(original: unknown, patch: unknown[], fieldName: string): unknown[] {
  const replace = patch.findIndex((item) => isJsonObject(item) && item.$patch === "replace");
  if (replace >= 0) return structuredClone(patch.filter((_, index) => index !== replace));
  const current = Array.isArray(original) ? structuredClone(original) : [];
  if (isSetList(fieldName)) return [...current, ...patch.filter((item) => !current.some((existing) => sameScalar(existing, item)))];
  const key = mergeKeysOf(fieldName, [...current, ...patch])?.[0];
  if (key === undefined) return structuredClone(patch);
  for (const item of patch) {
    if (!isJsonObject(item) || item[key] === undefined)
      throw new StatusError("BadRequest", `every element of ${fieldName} in a strategic merge patch needs the merge key ${key}`);
    const index = current.findIndex((existing) => isJsonObject(existing) && sameScalar(existing[key], item[key]));
    if (item.$patch === "delete") {
      if (index >= 0) current.splice(index, 1);
    } else if (index >= 0) {
      current[index] = applyStrategicMergePatch(current[index], item);
    } else {
      current.push(applyStrategicMergePatch(undefined, item));
    }
  }
  return current;
}

/**
 * Applies a strategic merge patch: a JSON merge patch in which lists that
 * have a merge key in the built-in kinds (containers by name, ports by port,
 * env by name...) merge element by element and `finalizers` merges as a set.
 * Understands the `$patch: replace|delete`, `$retainKeys` and
 * `$deleteFromPrimitiveList/<field>` directives and ignores
 * `$setElementOrder/<field>`. Custom resources do not support strategic
 * merge on a real server; here they get the same treatment.
 */
export function applyStrategicMergePatch(original: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return structuredClone(patch);
  const { $patch: directive, $retainKeys: retainKeys, ...fields } = patch;
  if (directive === "replace") return structuredClone(fields);
  const result: JsonObject = isJsonObject(original) ? structuredClone(original) : {};
  for (const [name, value] of Object.entries(fields)) {
    if (name.startsWith("$setElementOrder/")) continue;
    if (name.startsWith("$deleteFromPrimitiveList/")) {
      const field = name.slice("$deleteFromPrimitiveList/".length);
      const list = result[field];
      if (Array.isArray(list) && Array.isArray(value)) result[field] = list.filter((item) => !value.some((removed) => sameScalar(removed, item)));
      continue;
    }
    if (value === null) delete result[name];
    else if (Array.isArray(value)) result[name] = mergeList(result[name], value, name);
    else if (isJsonObject(value) && value.$patch === "delete") delete result[name];
    else result[name] = applyStrategicMergePatch(result[name], value);
  }
  if (Array.isArray(retainKeys)) {
    for (const name of Object.keys(result)) if (!retainKeys.includes(name)) delete result[name];
  }
  return result;
}
