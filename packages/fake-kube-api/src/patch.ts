import { isDeepStrictEqual } from "node:util";
import { StatusError } from "./status.js";

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** Whether a value is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Applies an RFC 7386 JSON merge patch; returns a new value and leaves `target` alone. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return structuredClone(patch);
  const result: JsonObject = isJsonObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** One RFC 6902 operation. */
interface JsonPatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: unknown;
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new StatusError("BadRequest", `invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split("/")
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function arrayIndex(array: unknown[], token: string, allowEnd: boolean): number {
  if (allowEnd && token === "-") return array.length;
  const index = /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : NaN;
  if (!(index >= 0 && index < array.length + (allowEnd ? 1 : 0))) throw new StatusError("Invalid", `the array index ${JSON.stringify(token)} is out of range`);
  return index;
}

/** Resolves all but the last token of `pointer`, returning the container and the last token. */
function locate(document: unknown, pointer: string): { parent: unknown; token: string } {
  const tokens = parsePointer(pointer);
  const token = tokens.pop();
  if (token === undefined) throw new StatusError("Invalid", "a JSON patch operation may not target the whole document");
  let parent = document;
  for (const part of tokens) {
    if (Array.isArray(parent)) parent = parent[arrayIndex(parent, part, false)];
    else if (isJsonObject(parent) && Object.hasOwn(parent, part)) parent = parent[part];
    else throw new StatusError("Invalid", `the path ${JSON.stringify(pointer)} does not exist`);
  }
  return { parent, token };
}

function read(document: unknown, pointer: string): unknown {
  if (pointer === "") return document;
  const { parent, token } = locate(document, pointer);
  if (Array.isArray(parent)) return parent[arrayIndex(parent, token, false)];
  if (isJsonObject(parent) && Object.hasOwn(parent, token)) return parent[token];
  throw new StatusError("Invalid", `the path ${JSON.stringify(pointer)} does not exist`);
}

function remove(document: unknown, pointer: string): unknown {
  const { parent, token } = locate(document, pointer);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, token, false), 1)[0];
  if (isJsonObject(parent) && Object.hasOwn(parent, token)) {
    const value = parent[token];
    delete parent[token];
    return value;
  }
  throw new StatusError("Invalid", `the path ${JSON.stringify(pointer)} does not exist`);
}

function add(document: unknown, pointer: string, value: unknown): void {
  const { parent, token } = locate(document, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, true), 0, value);
  else if (isJsonObject(parent)) parent[token] = value;
  else throw new StatusError("Invalid", `the path ${JSON.stringify(pointer)} does not exist`);
}

/** Applies an RFC 6902 JSON patch (an array of operations); returns a new document. */
export function applyJsonPatch(document: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new StatusError("BadRequest", "a JSON patch must be an array of operations");
  const result = structuredClone(document);
  for (const operation of operations as JsonPatchOperation[]) {
    if (!isJsonObject(operation) || typeof operation.path !== "string") throw new StatusError("BadRequest", "every JSON patch operation needs op and path");
    switch (operation.op) {
      case "add":
        add(result, operation.path, structuredClone(operation.value));
        break;
      case "remove":
        remove(result, operation.path);
        break;
      case "replace":
        remove(result, operation.path);
        add(result, operation.path, structuredClone(operation.value));
        break;
      case "move":
        add(result, operation.path, remove(result, operation.from ?? ""));
        break;
      case "copy":
        add(result, operation.path, structuredClone(read(result, operation.from ?? "")));
        break;
      case "test":
        if (!isDeepStrictEqual(read(result, operation.path), operation.value)) {
          throw new StatusError("Invalid", `the test operation on ${JSON.stringify(operation.path)} failed`);
        }
        break;
      default:
        throw new StatusError("BadRequest", `unknown JSON patch operation ${JSON.stringify((operation as { op: unknown }).op)}`);
    }
  }
  return result;
}

/** The value at a path of object keys, or undefined where the path leaves the objects. */
export function field(object: unknown, ...path: string[]): unknown {
  return path.reduce<unknown>((value, key) => (isJsonObject(value) ? value[key] : undefined), object);
}

/** A number, or `fallback` for anything else (an unset optional count). */
export function numberOr(value: unknown, fallback = 0): number {
  return typeof value === "number" ? value : fallback;
}
