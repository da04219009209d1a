import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { createExecServer, execRoute } from "./exec.js";
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
import { startCluster, type CertificateIssuanceHook, type CertificateTimings, type FakeNode, type PodBehaviourHook, type PodTimings } from "./cluster/index.js";
import { immutableFieldViolations } from "./immutable.js";
import { modelOf, openApiV3Document, openApiV3Index, pruneUnknownFields, unknownFields } from "./schema.js";
import { scaleOf, serveLog, writeScale } from "./subresources.js";
import { tableOf, wantsTable, type IncludeObject } from "./table.js";
import { qualifiedKind } from "./registry.js";

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
  /**
   * What happens to fields the kind does not declare when a request has no
   * `fieldValidation` parameter: "Strict" refuses them (400, the default
   * here, so mistakes surface in tests), "Warn" drops them with a Warning
   * header (a real server's default), "Ignore" drops them silently.
   */
  fieldValidation?: FieldValidation;
  /** Run the simulated controllers and kubelet (default true); false leaves status to the test, as before. */
  controllers?: boolean;
  /** The cluster's nodes (default three, one per zone: node-a/zone-a, node-b/zone-b, node-c/zone-c). */
  nodes?: readonly FakeNode[];
  /** Chooses what each pod's containers do (ready, never-ready, crash-loop, oom-killed, image-pull-error, succeed, fail). */
  podBehaviour?: PodBehaviourHook;
  /** The simulation's clock (start, ready, exit, back-off, termination delays in ms). */
  podTimings?: Partial<PodTimings>;
  /**
   * How the simulated cert-manager's issuance ends for a Certificate's DNS
   * names: undefined issues it, a string fails it with that reason (default: every name is issued).
   */
  certificateIssuance?: CertificateIssuanceHook;
  /** The simulated cert-manager's clock (issuance delay, validity). */
  certificateTimings?: Partial<CertificateTimings>;
  /** Listen on this port instead of a random one (the standalone CLI). */
  port?: number;
}

/** The `fieldValidation` directive of a write. */
export type FieldValidation = "Ignore" | "Warn" | "Strict";

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
  /** Replaces the pod behaviour hook for pods that start from now on. */
  setPodBehaviour(hook: PodBehaviourHook | undefined): void;
  /** Replaces the certificate issuance hook for issuances that end from now on. */
  setCertificateIssuance(hook: CertificateIssuanceHook | undefined): void;
  /** Appends a line to a running pod's container log (the first container unless named). */
  writePodLog(namespace: string, pod: string, line: string, container?: string): void;
  /** The average utilization (percent) a metrics server would report for an HPA's pods; the HPA controller scales on it. */
  setUtilization(namespace: string, hpa: string, percent: number): void;
  /** Errors the simulated controllers hit (they retry), for debugging a test. */
  readonly controllerErrors: readonly { controller: string; key: string; message: string }[];
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
  if (contentType === "application/vnd.kubernetes.protobuf") {
    // kubectl's typed generators (kubectl create namespace/secret/...) send protobuf; the fake only decodes JSON and YAML.
    throw new StatusError("UnsupportedMediaType", "the fake API server does not decode protobuf request bodies: send JSON (kubectl create -f, kubectl apply)");
  }
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
  subresource: "status" | "scale" | "log" | undefined;
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
  const cluster = options.controllers === false ? undefined : startCluster(store, registry, options);

  const resolve = (group: string, version: string, rest: string[]): ResourceRoute => {
    const namespacedForm = rest[0] === "namespaces" && rest.length >= 3 && registry.byPlural(group, version, rest[2]!) !== undefined;
    const [namespace, plural, name, subresource, ...extra] = namespacedForm ? rest.slice(1) : [undefined, ...rest];
    const kind = plural === undefined ? undefined : registry.byPlural(group, version, plural);
    const served =
      subresource === undefined ||
      (subresource === "status" && kind?.statusSubresource) ||
      (subresource === "scale" && kind?.scaleSubresource) ||
      (subresource === "log" && kind?.group === "" && kind.kind === "Pod");
    if (kind === undefined || extra.length > 0 || !served) throw resourceNotFound();
    if (namespacedForm !== kind.namespaced && !(kind.namespaced && name === undefined)) throw resourceNotFound();
    return { kind, namespace, name, subresource: subresource as ResourceRoute["subresource"] };
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
    if (fieldManager !== undefined && (fieldManager === "" || fieldManager.length > 128))
      throw new StatusError("BadRequest", "fieldManager must be between 1 and 128 characters");
    const dryRun = query.get("dryRun");
    if (dryRun !== null && dryRun !== "All") throw new StatusError("BadRequest", `unsupported dryRun value ${JSON.stringify(dryRun)}: only "All" is allowed`);
    const patchType = method === "PATCH" ? patchTypes[contentType ?? ""] : undefined;
    if (query.has("force") && patchType !== "apply") throw new StatusError("BadRequest", "force is only allowed for apply patches");
    const fieldValidation = (query.get("fieldValidation") ?? options.fieldValidation ?? "Strict") as FieldValidation;
    if (!["Ignore", "Warn", "Strict"].includes(fieldValidation))
      throw new StatusError("BadRequest", `fieldValidation must be one of Ignore, Warn or Strict, not ${JSON.stringify(fieldValidation)}`);
    const warnings: string[] = [];
    const model = modelOf(kind);
    /** Client admission: unknown fields per the fieldValidation directive, then immutable fields. */
    const admit = (old: JsonObject | undefined, candidate: JsonObject) => {
      const unknown = model === undefined ? [] : unknownFields(model, candidate);
      if (unknown.length > 0 && fieldValidation === "Strict") {
        throw new StatusError(
          "BadRequest",
          `${qualifiedKind(kind)} in version "${kind.version}" cannot be handled as a ${kind.kind}: strict decoding error: ${unknown.map((path) => `unknown field "${path}"`).join(", ")}`,
        );
      }
      if (unknown.length > 0) pruneUnknownFields(model!, candidate);
      if (fieldValidation === "Warn") warnings.push(...unknown.map((path) => `unknown field "${path}"`));
      return old === undefined ? [] : immutableFieldViolations(old, candidate);
    };
    const writeOptions = async (): Promise<WriteOptions> => {
      const validator = validateSchemas ? await loadSchemaValidator(apiVersionOf(kind), kind.kind) : undefined;
      // A real server names an unnamed updater after the client's User-Agent.
      const manager = fieldManager ?? (request.headers["user-agent"] ?? "unknown").split("/")[0]!;
      return { manager, dryRun: dryRun === "All", admit, ...(subresource === "status" ? { subresource } : {}), ...(validator ? { validator } : {}) };
    };
    const table = wantsTable(request.headers.accept);
    const include = (query.get("includeObject") ?? "Metadata") as IncludeObject;
    const send = (code: number, body: unknown) => {
      response.writeHead(code, {
        "content-type": "application/json",
        ...(warnings.length > 0 ? { warning: warnings.map((text) => `299 - ${JSON.stringify(text)}`).join(", ") } : {}),
      });
      response.end(JSON.stringify(body));
    };

    if (subresource === "scale" && name !== undefined) {
      if (method === "GET") {
        record.verb = "get";
        return send(200, scaleOf(store.get(kind, namespace, name)));
      }
      if (method !== "PUT" && method !== "PATCH") throw new StatusError("MethodNotAllowed", "the server does not allow this method on the requested resource");
      record.verb = method === "PUT" ? "update" : "patch";
      const body = await readBody(request, contentType);
      return send(200, writeScale(store, kind, namespace, name, method, patchType, body, { ...(await writeOptions()), admit: () => [] }));
    }
    if (subresource === "log" && name !== undefined) {
      if (method !== "GET") throw new StatusError("MethodNotAllowed", "the server does not allow this method on the requested resource");
      if (cluster === undefined) throw new StatusError("BadRequest", "pod logs need the simulated kubelet (controllers: true)");
      record.verb = "get";
      return serveLog(cluster.kubelet, response, namespace!, name, query, (stop) => {
        openWatches.add(stop);
        response.on("close", () => openWatches.delete(stop));
      });
    }

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
            ...(table ? { present: (object: JsonObject) => tableOf(kind, [object], include, String((object.metadata as JsonObject).resourceVersion)) } : {}),
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
        const page = store.list(kind, selection, {
          ...(limit > 0 ? { limit } : {}),
          ...(query.get("continue") ? { continueToken: query.get("continue")! } : {}),
        });
        if (table) {
          const rendered = tableOf(kind, page.items, include, page.resourceVersion);
          return send(200, {
            ...rendered,
            metadata: {
              ...(rendered.metadata as JsonObject),
              ...(page.continue ? { continue: page.continue, remainingItemCount: page.remainingItemCount } : {}),
            },
          });
        }
        return send(200, listBody(kind, page));
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
        if (table) {
          const object = store.get(kind, namespace, name);
          return send(200, tableOf(kind, [object], include, String((object.metadata as JsonObject).resourceVersion)));
        }
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
          throw new StatusError(
            "UnsupportedMediaType",
            `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`,
          );
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
        const gracePeriod = query.get("gracePeriodSeconds") ?? (isJsonObject(body) ? body.gracePeriodSeconds : undefined);
        const options = await writeOptions();
        return send(
          200,
          store.delete(
            kind,
            namespace,
            name,
            {
              ...(preconditions as { uid?: string; resourceVersion?: string }),
              ...(gracePeriod === undefined || gracePeriod === null ? {} : { gracePeriodSeconds: Number(gracePeriod) }),
            },
            options,
          ),
        );
      }
      default:
        throw new StatusError("MethodNotAllowed", `the server does not allow this method on the requested resource`);
    }
  };

  const handle = async (request: IncomingMessage, response: ServerResponse, record: RecordedRequest) => {
    const url = new URL(request.url ?? "/", "http://fake");
    const segments = url.pathname
      .split("/")
      .filter((segment) => segment !== "")
      .map(decodeURIComponent);
    if (segments[0] === "openapi") {
      record.verb = "discovery";
      const [, openApiVersion, root, ...groupVersion] = segments;
      const [group, version] = root === "api" ? ["", groupVersion[0]] : [groupVersion[0], groupVersion[1]];
      const document =
        openApiVersion !== "v3"
          ? undefined
          : root === undefined
            ? openApiV3Index(registry)
            : version === undefined
              ? undefined
              : openApiV3Document(registry, group!, version);
      if (document === undefined) throw resourceNotFound();
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(document));
      return;
    }
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

  const scratchRoot = mkdtempSync(join(tmpdir(), "fake-kube-exec-"));
  const exec = createExecServer(cluster?.objects, scratchRoot);
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
    const handled = execRoute(url.pathname) ? Promise.reject(new StatusError("BadRequest", "Upgrade request required")) : handle(request, response, record);
    handled.catch((error: unknown) => {
      const status =
        error instanceof StatusError ? error.status : new StatusError("InternalError", error instanceof Error ? error.message : String(error)).status;
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.writeHead(status.code, { "content-type": "application/json" });
      response.end(JSON.stringify(status));
    });
  });

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(request.url ?? "/", "http://fake");
    const route = execRoute(url.pathname);
    requests.push({ method: request.method ?? "GET", path: url.pathname, query: Object.fromEntries(url.searchParams), contentType: undefined, verb: "create" });
    if (route === undefined) socket.destroy();
    else exec.upgrade(request, socket, head, route.namespace, route.pod, url.searchParams);
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolveListen());
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
    setPodBehaviour: (hook) => cluster?.setPodBehaviour(hook),
    setCertificateIssuance: (hook) => cluster?.setCertificateIssuance(hook),
    writePodLog(namespace, pod, line, container) {
      if (cluster === undefined) throw new Error("pod logs need the simulated kubelet (controllers: true)");
      cluster.kubelet.writeLog(namespace, pod, line, container);
    },
    setUtilization(namespace, hpa, percent) {
      cluster?.utilization.set(`${namespace}/${hpa}`, percent);
      cluster?.runtime.enqueue("horizontal-pod-autoscaler", `${namespace}/${hpa}`);
    },
    get controllerErrors() {
      return cluster?.runtime.errors ?? [];
    },
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
      cluster?.stop();
      exec.close();
      for (const stop of openWatches) stop();
      await new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      });
      rmSync(scratchRoot, { recursive: true, force: true });
    },
  };
}
