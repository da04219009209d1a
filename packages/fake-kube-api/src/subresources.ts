import type { ServerResponse } from "node:http";
import type { Kubelet } from "./cluster/kubelet.js";
import { applyJsonPatch, applyMergePatch, isJsonObject, type JsonObject } from "./patch.js";
import type { ResourceKind } from "./registry.js";
import { StatusError } from "./status.js";
import type { ObjectStore, WriteOptions } from "./store.js";

/** The label selector of a workload rendered as the string `Scale.status.selector` carries. */
function selectorString(selector: unknown): string {
  if (!isJsonObject(selector)) return "";
  const labels = isJsonObject(selector.matchLabels) ? Object.entries(selector.matchLabels).map(([key, value]) => `${key}=${String(value)}`) : [];
  const expressions = Array.isArray(selector.matchExpressions)
    ? (selector.matchExpressions as JsonObject[]).map((expression) => {
        const values = Array.isArray(expression.values) ? expression.values.join(",") : "";
        switch (expression.operator) {
          case "In":
            return `${String(expression.key)} in (${values})`;
          case "NotIn":
            return `${String(expression.key)} notin (${values})`;
          case "Exists":
            return String(expression.key);
          default:
            return `!${String(expression.key)}`;
        }
      })
    : [];
  return [...labels, ...expressions].join(",");
}

/** The autoscaling/v1 Scale view of a workload with a `/scale` subresource. */
export function scaleOf(object: JsonObject): JsonObject {
  const metadata = object.metadata as JsonObject;
  const spec = isJsonObject(object.spec) ? object.spec : {};
  const status = isJsonObject(object.status) ? object.status : {};
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      creationTimestamp: metadata.creationTimestamp,
    },
    spec: { replicas: typeof spec.replicas === "number" ? spec.replicas : 1 },
    status: { replicas: typeof status.replicas === "number" ? status.replicas : 0, selector: selectorString(spec.selector) },
  };
}

/**
 * A write to `/scale` (PUT with a Scale, or a merge/JSON patch of the
 * Scale): only `spec.replicas` reaches the workload, with the Scale's
 * resourceVersion as a precondition when it carries one.
 */
export function writeScale(
  store: ObjectStore,
  kind: ResourceKind,
  namespace: string | undefined,
  name: string,
  method: string,
  patchType: string | undefined,
  body: unknown,
  options: WriteOptions,
): JsonObject {
  const workload = store.get(kind, namespace, name);
  const current = scaleOf(workload);
  const desired =
    method === "PUT"
      ? body
      : patchType === "json"
        ? applyJsonPatch(current, body)
        : patchType === "merge" || patchType === "strategic"
          ? applyMergePatch(current, body)
          : undefined;
  if (desired === undefined)
    throw new StatusError(
      "UnsupportedMediaType",
      "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json",
    );
  if (!isJsonObject(desired) || !isJsonObject(desired.spec)) throw new StatusError("BadRequest", "the request body must be a Scale");
  const replicas = desired.spec.replicas;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
    throw new StatusError(
      "Invalid",
      `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
      {
        name,
        group: "autoscaling",
        kind: "Scale",
        causes: [{ reason: "FieldValueInvalid", message: "must be greater than or equal to 0", field: "spec.replicas" }],
      },
    );
  }
  const resourceVersion = isJsonObject(desired.metadata) ? desired.metadata.resourceVersion : undefined;
  const patch = { metadata: resourceVersion ? { resourceVersion } : {}, spec: { replicas } };
  return scaleOf(store.patch(kind, namespace, name, "merge", patch, options));
}

const integer = (value: string | null) => (value === null || value === "" ? undefined : Number(value));

/**
 * `GET pods/<name>/log`: the container's log as text/plain; with
 * `follow=true` the response stays open and carries new lines until the
 * container stops or the pod goes.
 */
export function serveLog(
  kubelet: Kubelet,
  response: ServerResponse,
  namespace: string,
  name: string,
  query: URLSearchParams,
  onClose: (stop: () => void) => void,
): void {
  const request = {
    ...(query.get("container") ? { container: query.get("container")! } : {}),
    previous: query.get("previous") === "true",
    timestamps: query.get("timestamps") === "true",
    ...(integer(query.get("tailLines")) !== undefined ? { tailLines: integer(query.get("tailLines"))! } : {}),
    ...(integer(query.get("sinceSeconds")) !== undefined ? { sinceSeconds: integer(query.get("sinceSeconds"))! } : {}),
    ...(query.get("sinceTime") ? { sinceTime: query.get("sinceTime")! } : {}),
  };
  // The API server's validation of PodLogOptions.
  if (request.sinceSeconds !== undefined && request.sinceTime !== undefined)
    throw new StatusError("BadRequest", "at most one of `sinceTime` or `sinceSeconds` may be specified");
  if (request.sinceTime !== undefined && Number.isNaN(Date.parse(request.sinceTime)))
    throw new StatusError("BadRequest", `invalid sinceTime "${request.sinceTime}": not an RFC 3339 time`);
  if (query.get("follow") !== "true" || request.previous) {
    const lines = kubelet.readLog(namespace, name, request);
    response.writeHead(200, { "content-type": "text/plain" });
    response.end(lines.map((line) => `${line}\n`).join(""));
    return;
  }
  let unsubscribe: () => void = () => undefined;
  let headersSent = false;
  const open = () => {
    if (headersSent) return;
    headersSent = true;
    response.writeHead(200, { "content-type": "text/plain", "cache-control": "no-cache" });
    response.flushHeaders();
  };
  const end = () => {
    open();
    unsubscribe();
    if (!response.writableEnded) response.end();
  };
  // Throws (400/404) before any header when the container cannot be read.
  unsubscribe = kubelet.followLog(
    namespace,
    name,
    request,
    (line) => {
      open();
      response.write(`${line}\n`);
    },
    () => queueMicrotask(end),
  );
  open();
  response.on("close", end);
  onClose(end);
}
