import * as models from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { mergeKeysOf } from "./field-set.js";
import { isJsonObject, type JsonObject } from "./patch.js";
import { apiVersionOf, type KindRegistry, type ResourceKind } from "./registry.js";

/**
 * The structure of the built-in kinds, read from the attribute maps that
 * @kubernetes/client-node generates from Kubernetes' own OpenAPI document
 * (release-1.36). One source serves two purposes: refusing unknown fields
 * (strict field validation) and the OpenAPI v3 document kubectl fetches.
 */
interface Attribute {
  baseName: string;
  type: string;
  format: string;
}

function attributesOf(typeName: string): readonly Attribute[] | undefined {
  const model = (models as unknown as Record<string, { attributeTypeMap?: Attribute[] } | undefined>)[typeName];
  return Array.isArray(model?.attributeTypeMap) ? model.attributeTypeMap : undefined;
}

/** The client-node model of a kind (`V1Deployment`), or undefined for kinds it does not know (custom resources). */
export function modelOf(kind: Pick<ResourceKind, "version" | "kind">): string | undefined {
  const name = `${kind.version.charAt(0).toUpperCase()}${kind.version.slice(1)}${kind.kind}`;
  return attributesOf(name) ? name : undefined;
}

const arrayType = /^Array<(.+)>$/;
const mapType = /^\{ \[key: string\]: (.+); \}$/;

/**
 * The paths of fields in `value` that the model `typeName` does not declare,
 * like a real API server's strict decoding: `spec.template.spec.containers[0].bogus`.
 */
export function unknownFields(typeName: string, value: unknown, path = ""): string[] {
  const array = arrayType.exec(typeName);
  if (array) return Array.isArray(value) ? value.flatMap((item, index) => unknownFields(array[1]!, item, `${path}[${index}]`)) : [];
  const map = mapType.exec(typeName);
  if (map) return isJsonObject(value) ? Object.entries(value).flatMap(([key, item]) => unknownFields(map[1]!, item, `${path}[${key}]`)) : [];
  const attributes = attributesOf(typeName);
  if (attributes === undefined || !isJsonObject(value)) return [];
  const byName = new Map(attributes.map((attribute) => [attribute.baseName, attribute]));
  return Object.entries(value).flatMap(([key, item]) => {
    const field = path === "" ? key : `${path}.${key}`;
    const attribute = byName.get(key);
    return attribute === undefined ? [field] : unknownFields(attribute.type, item, field);
  });
}

/** Removes the fields `unknownFields` reports (what Ignore and Warn field validation do). */
export function pruneUnknownFields(typeName: string, value: unknown): void {
  const array = arrayType.exec(typeName);
  if (array) {
    if (Array.isArray(value)) for (const item of value) pruneUnknownFields(array[1]!, item);
    return;
  }
  const map = mapType.exec(typeName);
  if (map) {
    if (isJsonObject(value)) for (const item of Object.values(value)) pruneUnknownFields(map[1]!, item);
    return;
  }
  const attributes = attributesOf(typeName);
  if (attributes === undefined || !isJsonObject(value)) return;
  const byName = new Map(attributes.map((attribute) => [attribute.baseName, attribute]));
  for (const key of Object.keys(value)) {
    const attribute = byName.get(key);
    if (attribute === undefined) delete value[key];
    else pruneUnknownFields(attribute.type, value[key]);
  }
}

/** The OpenAPI v3 schema of one attribute type, with the list-merge extensions strategic merge patch reads. */
function schemaOf(typeName: string, format: string, fieldName: string | undefined, referenced: Set<string>): JsonObject {
  const array = arrayType.exec(typeName);
  if (array) {
    const keys = fieldName === undefined ? undefined : mergeKeysOf(fieldName, []);
    return {
      type: "array",
      items: schemaOf(array[1]!, "", undefined, referenced),
      ...(keys
        ? {
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": keys,
            "x-kubernetes-patch-merge-key": keys[0],
            "x-kubernetes-patch-strategy": "merge",
          }
        : {}),
    };
  }
  const map = mapType.exec(typeName);
  if (map) return { type: "object", additionalProperties: schemaOf(map[1]!, "", undefined, referenced) };
  switch (typeName) {
    case "string":
      return { type: "string", ...(format ? { format } : {}) };
    case "Date":
      return { type: "string", format: format || "date-time" };
    case "number":
      return format === "int32" || format === "int64" ? { type: "integer", format } : { type: "number", ...(format ? { format } : {}) };
    case "boolean":
      return { type: "boolean" };
    case "IntOrString":
      return { "x-kubernetes-int-or-string": true };
    case "any":
      return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
    default:
      if (attributesOf(typeName) === undefined) return {};
      referenced.add(typeName);
      return { allOf: [{ $ref: `#/components/schemas/${typeName}` }] };
  }
}

function componentSchemas(roots: ReadonlyMap<string, ResourceKind>): JsonObject {
  const schemas: JsonObject = {};
  const pending = new Set(roots.keys());
  for (const typeName of pending) {
    if (schemas[typeName] !== undefined) continue;
    const properties: JsonObject = {};
    for (const attribute of attributesOf(typeName) ?? [])
      properties[attribute.baseName] = schemaOf(attribute.type, attribute.format, attribute.baseName, pending);
    const kind = roots.get(typeName);
    schemas[typeName] = {
      type: "object",
      properties,
      ...(kind ? { "x-kubernetes-group-version-kind": [{ group: kind.group, version: kind.version, kind: kind.kind }] } : {}),
    };
  }
  return schemas;
}

/** The query parameters kubectl looks for before trusting the server to validate (`fieldValidation`) and apply. */
const writeParameters = ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"].map((name) => ({
  name,
  in: "query",
  schema: { type: name === "force" ? "boolean" : "string" },
}));

function pathsOf(kind: ResourceKind): JsonObject {
  const base = kind.group === "" ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  const collection = kind.namespaced ? `${base}/namespaces/{namespace}/${kind.plural}` : `${base}/${kind.plural}`;
  const gvk = { "x-kubernetes-group-version-kind": { group: kind.group, version: kind.version, kind: kind.kind } };
  const model = modelOf(kind);
  const body = model ? { content: { "application/json": { schema: { $ref: `#/components/schemas/${model}` } } } } : {};
  const operation = (action: string, parameters: object[] = []) => ({
    "x-kubernetes-action": action,
    ...gvk,
    parameters,
    responses: { "200": { description: "OK", ...body } },
  });
  return {
    [collection]: { get: operation("list"), post: operation("post", writeParameters) },
    [`${collection}/{name}`]: {
      get: operation("get"),
      put: operation("put", writeParameters),
      patch: operation("patch", writeParameters),
      delete: operation("delete"),
    },
  };
}

/** `/openapi/v3`: the discovery of one document per group/version. */
export function openApiV3Index(registry: KindRegistry): JsonObject {
  const paths: JsonObject = {};
  // Clients cache documents by this hash; it changes when a kind is registered.
  const hash = createHash("sha256").update(JSON.stringify(registry.all())).digest("hex").slice(0, 16).toUpperCase();
  for (const kind of registry.all()) {
    const key = kind.group === "" ? `api/${kind.version}` : `apis/${kind.group}/${kind.version}`;
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
  }
  return { paths };
}

/** `/openapi/v3/apis/<group>/<version>`: paths and schemas of one group/version, or undefined when it serves nothing. */
export function openApiV3Document(registry: KindRegistry, group: string, version: string): JsonObject | undefined {
  const kinds = registry.all().filter((kind) => kind.group === group && kind.version === version);
  if (kinds.length === 0) return undefined;
  const roots = new Map(kinds.flatMap((kind) => (modelOf(kind) ? [[modelOf(kind)!, kind] as const] : [])));
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: `${apiVersionOf({ group, version })} (fake)` },
    paths: Object.assign({}, ...kinds.map(pathsOf)),
    components: { schemas: componentSchemas(roots) },
  };
}
