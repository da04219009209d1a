import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig, loadYaml } from "@kubernetes/client-node";
import { matchesLabels, parseFieldSelector, parseLabelSelector } from "./label-selector.js";
import { isJsonObject, type JsonObject } from "./patch.js";
import { apiVersionOf, createKindRegistry, isBuiltIn, type ResourceKind } from "./registry.js";
import { resourceNotFound, StatusError } from "./status.js";
import { createObjectStore, inSelection, type PatchType, type Selection, type WriteOptions } from "./store.js";
import { loadSchemaValidator } from "./validate.js";
import { discoveryDocument } from "./discovery.js";
import { serveWatch } from "./watch.js";

/** Options of `createFakeKubeApi`. */
export interface FakeKubeApiOptions {
  /** Kinds to serve besides `defaultKinds`. */
  kinds?: ResourceKind[];
  /** Refuse namespaced objects whose Namespace does not exist, with 404 (default false). */
  requireNamespaces?: boolean;
  /** How many changes the watch history keeps before older resourceVersions answer 410 (default 1000). */
  watchHistoryLimit?: number;
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK (default 5000 ms). */
  bookmarkIntervalMs?: number;
  /** Validate objects of kinds kubernetes-models knows against their schema, answering 422 (default true). */
  validateSchemas?: boolean;
}

/** One request the fake server received, for tests that count calls. */
export interface RecordedRequest {
  method: string;
  /** URL path without the query. */
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  /** get, list, watch, create, update, patch, apply, delete, deletecollection or discovery. */
  verb: string;
  /** The HTTP status answered; undefined while the response is still open. */
  status?: number;
}

/** Which stored objects `objects()` returns; every given field must match. */
export interface ObjectFilter {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  /** A label selector string, e.g. `app=web,tier!=db`. */
  labelSelector?: string;
}

/** A running fake Kubernetes API server. */
export interface FakeKubeApi {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** A new @kubernetes/client-node KubeConfig whose current context points at this server. */
  kubeConfig(): KubeConfig;
  /** Serves one more kind (e.g. a custom resource) from now on. */
  registerKind(kind: ResourceKind): void;
  /** Copies of the stored objects, with apiVersion and kind, sorted by namespace and name. */
  objects(filter?: ObjectFilter): JsonObject[];
  /** Every request received so far, oldest first. */
  readonly requests: readonly RecordedRequest[];
  /** Ends open watches and stops the server. */
  close(): Promise<void>;
}

const patchTypes: Record<string, PatchType | "apply"> = {
  "application/merge-patch+json": "merge",
  "application/strategic-merge-patch+json": "strategic",
  "application/json-patch+json": "json",
  "application/apply-patch+yaml": "apply",
};

async function readBody(request: IncomingMessage, contentType: string | undefined): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    // Only apply bodies may be YAML; everything else must be JSON.
    if (contentType === "application/apply-patch+yaml") {
      try {
        return loadYaml(text);
      } catch {
        // fall through to the BadRequest below
      }
    }
    throw new StatusError("BadRequest", `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

function queryBoolean(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value === "true" || value === "1";
}

/** A resource URL resolved against the registry. */
interface ResourceRoute {
  kind: ResourceKind;
  /** From the URL; undefined for cluster-scoped kinds and all-namespace collections. */
  namespace: string | undefined;
  name: string | undefined;
  subresource: "status" | undefined;
}

/**
 * Starts a fake Kubernetes API server on 127.0.0.1 (port 0) that speaks the
 * real REST protocol well enough for @kubernetes/client-node to work
 * unmodified: discovery, CRUD, patches, server-side apply, watch. See the
 * package README for what it simplifies.
 */
export async function createFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const registry = createKindRegistry(options.kinds);
  const store = createObjectStore({ registry, requireNamespaces: options.requireNamespaces ?? false, watchHistoryLimit: options.watchHistoryLimit ?? 1000 });
  const validateSchemas = options.validateSchemas ?? true;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 5000;
  const requests: RecordedRequest[] = [];
  const openWatches = new Set<() => void>();
  let port = 0;

  const resolve = (group: string, version: string, rest: string[]): ResourceRoute => {
    const namespacedForm = rest[0] === "namespaces" && rest.length >= 3 && registry.byPlural(group, version, rest[2]!) !== undefined;
    const [namespace, plural, name, subresource, ...extra] = namespacedForm ? rest.slice(1) : [undefined, ...rest];
    const kind = plural === undefined ? undefined : registry.byPlural(group, version, plural);
    if (kind === undefined || extra.length > 0 || (subresource !== undefined && subresource !== "status")) throw resourceNotFound();
    if (namespacedForm !== kind.namespaced && !(kind.namespaced && name === undefined)) throw resourceNotFound();
    return { kind, namespace, name, subresource: subresource as "status" | undefined };
  };

  const selectionOf = (route: ResourceRoute, query: URLSearchParams): Selection => {
    const labelSelector = query.get("labelSelector");
    const fieldSelector = query.get("fieldSelector");
    return {
      ...(route.namespace !== undefined ? { namespace: route.namespace } : {}),
      ...(labelSelector ? { labelSelector: parseLabelSelector(labelSelector) } : {}),
      ...(fieldSelector ? { fieldSelector: parseFieldSelector(fieldSelector, route.kind.kind) } : {}),
    };
  };

  const listBody = (kind: ResourceKind, page: { items: JsonObject[]; resourceVersion: string; continue?: string; remainingItemCount?: number }) => ({
    apiVersion: apiVersionOf(kind),
    kind: `${kind.kind}List`,
    metadata: { resourceVersion: page.resourceVersion, ...(page.continue ? { continue: page.continue, remainingItemCount: page.remainingItemCount } : {}) },
    // kube-apiserver leaves apiVersion/kind off the items of built-in lists; custom resources keep them.
    items: isBuiltIn(kind) ? page.items.map(({ apiVersion: _apiVersion, kind: _kind, ...rest }) => rest) : page.items,
  });

  const handleResource = async (request: IncomingMessage, response: ServerResponse, route: ResourceRoute, query: URLSearchParams, record: RecordedRequest) => {
    const { kind, namespace, name, subresource } = route;
    const method = request.method ?? "GET";
    const contentType = record.contentType;
    const fieldManager = query.get("fieldManager") ?? undefined;
    if (fieldManager !== undefined && (fieldManager === "" || fieldManager.length > 128)) throw new StatusError("BadRequest", "fieldManager must be between 1 and 128 characters");
    const dryRun = query.get("dryRun");
    if (dryRun !== null && dryRun !== "All") throw new StatusError("BadRequest", `unsupported dryRun value ${JSON.stringify(dryRun)}: only "All" is allowed`);
    const patchType = method === "PATCH" ? patchTypes[contentType ?? ""] : undefined;
    if (query.has("force") && patchType !== "apply") throw new StatusError("BadRequest", "force is only allowed for apply patches");
    const writeOptions = async (): Promise<WriteOptions> => {
      const validator = validateSchemas ? await loadSchemaValidator(apiVersionOf(kind), kind.kind) : undefined;
      // A real server names an unnamed updater after the client's User-Agent.
      const manager = fieldManager ?? (request.headers["user-agent"] ?? "unknown").split("/")[0]!;
      return { manager, dryRun: dryRun === "All", ...(subresource ? { subresource } : {}), ...(validator ? { validator } : {}) };
    };
    const send = (code: number, body: unknown) => {
      response.writeHead(code, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };

    if (name === undefined) {
      if (subresource !== undefined) throw resourceNotFound();
      const selection = selectionOf(route, query);
      if (method === "GET" && queryBoolean(query, "watch")) {
        record.verb = "watch";
        const timeout = Number(query.get("timeoutSeconds"));
        const stop = serveWatch(
          response,
          {
            collection: `${kind.group}/${kind.version}/${kind.plural}`,
            apiVersion: apiVersionOf(kind),
            kind: kind.kind,
            matches: (object) => inSelection(selection, object),
            resourceVersion: query.get("resourceVersion") ?? undefined,
            allowBookmarks: queryBoolean(query, "allowWatchBookmarks"),
            sendInitialEvents: queryBoolean(query, "sendInitialEvents"),
            timeoutSeconds: timeout > 0 ? timeout : undefined,
            bookmarkIntervalMs,
          },
          { log: store.log, current: () => store.select(kind, {}), currentResourceVersion: () => store.resourceVersion() },
        );
        record.status = 200;
        openWatches.add(stop);
        response.on("close", () => openWatches.delete(stop));
        return;
      }
      if (method === "GET") {
        record.verb = "list";
        const limit = Number(query.get("limit"));
        return send(200, listBody(kind, store.list(kind, selection, { ...(limit > 0 ? { limit } : {}), ...(query.get("continue") ? { continueToken: query.get("continue")! } : {}) })));
      }
      if (method === "POST" && (namespace !== undefined || !kind.namespaced)) {
        record.verb = "create";
        const body = await readBody(request, contentType);
        const options = await writeOptions();
        return send(201, store.create(kind, namespace, body, options));
      }
      if (method === "DELETE") {
        record.verb = "deletecollection";
        await readBody(request, contentType);
        const options = await writeOptions();
        return send(200, listBody(kind, { items: store.deleteCollection(kind, selection, options), resourceVersion: String(store.resourceVersion()) }));
      }
      throw new StatusError("MethodNotAllowed", `the server does not allow this method on the requested resource`);
    }

    switch (method) {
      case "GET":
        record.verb = "get";
        return send(200, store.get(kind, namespace, name));
      case "PUT": {
        record.verb = "update";
        const body = await readBody(request, contentType);
        const options = await writeOptions();
        return send(200, store.replace(kind, namespace, name, body, options));
      }
      case "PATCH": {
        // Custom resources have no strategic-merge metadata, so a real server refuses that patch type for them.
        const accepted = Object.keys(patchTypes).filter((type) => isBuiltIn(kind) || patchTypes[type] !== "strategic");
        if (patchType === undefined || (patchType === "strategic" && !isBuiltIn(kind))) {
          throw new StatusError("UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`);
        }
        record.verb = patchType === "apply" ? "apply" : "patch";
        const body = await readBody(request, contentType);
        const options = await writeOptions();
        if (patchType !== "apply") return send(200, store.patch(kind, namespace, name, patchType, body, options));
        if (fieldManager === undefined) throw new StatusError("BadRequest", "PATCH, application/apply-patch+yaml requests require fieldManager to be set");
        const { object, created } = store.apply(kind, namespace, name, body, { ...options, force: queryBoolean(query, "force") });
        return send(created ? 201 : 200, object);
      }
      case "DELETE": {
        record.verb = "delete";
        const body = await readBody(request, contentType);
        const preconditions = isJsonObject(body) && isJsonObject(body.preconditions) ? body.preconditions : {};
        const options = await writeOptions();
        return send(200, store.delete(kind, namespace, name, preconditions as { uid?: string; resourceVersion?: string }, options));
      }
      default:
        throw new StatusError("MethodNotAllowed", `the server does not allow this method on the requested resource`);
    }
  };

  const handle = async (request: IncomingMessage, response: ServerResponse, record: RecordedRequest) => {
    const url = new URL(request.url ?? "/", "http://fake");
    const segments = url.pathname.split("/").filter((segment) => segment !== "").map(decodeURIComponent);
    const resourceBase = segments[0] === "api" ? 2 : segments[0] === "apis" ? 3 : undefined;
    if (resourceBase === undefined || segments.length <= resourceBase) {
      record.verb = "discovery";
      if (request.method !== "GET") throw new StatusError("MethodNotAllowed", "the server does not allow this method on the requested resource");
      const body = discoveryDocument(registry, segments, `127.0.0.1:${port}`);
      response.writeHead(200, { "content-type": typeof body === "string" ? "text/plain" : "application/json" });
      response.end(typeof body === "string" ? body : JSON.stringify(body));
      return;
    }
    const [group, version] = resourceBase === 2 ? ["", segments[1]!] : [segments[1]!, segments[2]!];
    await handleResource(request, response, resolve(group, version, segments.slice(resourceBase)), url.searchParams, record);
  };

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://fake");
    const record: RecordedRequest = {
      method: request.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: request.headers["content-type"]?.split(";")[0]?.trim(),
      verb: "unknown",
    };
    requests.push(record);
    response.on("finish", () => (record.status = response.statusCode));
    handle(request, response, record).catch((error: unknown) => {
      const status = error instanceof StatusError ? error.status : new StatusError("InternalError", error instanceof Error ? error.message : String(error)).status;
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.writeHead(status.code, { "content-type": "application/json" });
      response.end(JSON.stringify(status));
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolveListen());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    requests,
    kubeConfig() {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
        users: [{ name: "fake", token: "fake-token" }],
        contexts: [{ name: "fake", cluster: "fake", user: "fake", namespace: "default" }],
        currentContext: "fake",
      });
      return kubeConfig;
    },
    registerKind: (kind) => registry.register(kind),
    objects(filter = {}) {
      const selector = filter.labelSelector ? parseLabelSelector(filter.labelSelector) : undefined;
      return store
        .all()
        .map(({ object }) => object)
        .filter((object) => {
          const metadata = object.metadata as JsonObject;
          return (
            (filter.apiVersion === undefined || object.apiVersion === filter.apiVersion) &&
            (filter.kind === undefined || object.kind === filter.kind) &&
            (filter.namespace === undefined || metadata.namespace === filter.namespace) &&
            (filter.name === undefined || metadata.name === filter.name) &&
            (selector === undefined || matchesLabels(selector, metadata.labels as Record<string, string> | undefined))
          );
        });
    },
    async close() {
      for (const stop of openWatches) stop();
      await new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      });
    },
  };
}
