import * as http from "node:http";
import * as http2 from "node:http2";
import { setMaxListeners } from "node:events";
import * as net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, cors as connectCors, createConnectRouter, createContextValues } from "@connectrpc/connect";
import type { ContextValues, Interceptor, ServiceImpl } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { observeCall } from "./call-outcome.js";
import { remapClientFaults } from "./client-faults.js";
import { Health } from "@berth/proto/grpc/health/v1/health";
import { registerHealth } from "./health.js";
import type { HealthRegistry } from "./health.js";
import { createInflightCalls } from "./inflight.js";
import { internalTokenGuard } from "./internal-auth.js";
import { captureJsonBody, jsonIntegerInterceptor } from "./json-integers.js";
import type { Logger } from "./logger.js";
import { createRpcMetrics } from "./metrics.js";
import type { RpcMetrics } from "./metrics.js";
import { reflectionServices, registerReflection } from "./reflection.js";
import { writeRefusal } from "./refusal.js";
import { storeErrorAsConnectError } from "./store/store-errors.js";

/** A service and its handlers; methods left out answer UNIMPLEMENTED. */
export interface ServiceRegistration {
  service: DescService;
  impl: Partial<ServiceImpl<DescService>>;
}

/** Pairs a service with a handler for every method: a forgotten handler fails to compile. */
export function serve<T extends DescService>(service: T, impl: ServiceImpl<T>): ServiceRegistration {
  return { service, impl: impl as Partial<ServiceImpl<DescService>> };
}

/**
 * Pairs a service with some of its handlers; the others answer UNIMPLEMENTED.
 * Only for a service still being built (switch to `serve` once every method is
 * there) and for test stand-ins that fake just what a test calls.
 */
export function servePartial<T extends DescService>(service: T, impl: Partial<ServiceImpl<T>>): ServiceRegistration {
  return { service, impl: impl as Partial<ServiceImpl<DescService>> };
}

/** Which browser origins may call the server (Connect-Web, gRPC-Web). */
export interface CorsOptions {
  /** Allowed origins; ["*"] allows any. */
  allowedOrigins: string[];
}

/** What a call guard sees: the call's headers, before any of its body is read. */
export interface GuardedCall {
  /** The called service's full name, e.g. "berth.api.v1.AppService". */
  service: string;
  header: Headers;
  /** Context values handed on to the handlers: a guard may put the caller it established here. */
  values: ContextValues;
}

/**
 * Refuses a call on its headers alone by throwing a ConnectError
 * (UNAUTHENTICATED, ...): a caller without a credential never gets its body
 * read, so it cannot make the server buffer or parse anything.
 */
export type CallGuard = (call: GuardedCall) => void | Promise<void>;

/** The largest request message a server reads by default, after decompression (4 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Options of startServer. */
export interface ServerOptions {
  /** The service's name, in logs and metrics. */
  name: string;
  host?: string;
  /** 0 picks a free port. */
  port: number;
  services: ServiceRegistration[];
  logger: Logger;
  /** When set, every RPC except health and reflection must present it (checked before the body is read). */
  internalToken?: string;
  /** Runs before the body is read on every RPC except health and reflection, after the internal credential check. */
  guard?: CallGuard;
  /**
   * The largest request message read, compressed or not; a larger one is
   * refused with RESOURCE_EXHAUSTED. Default DEFAULT_MAX_MESSAGE_BYTES.
   */
  maxMessageBytes?: number;
  cors?: CorsOptions;
  /** Interceptors run inside the kit's own (metrics, logging, in-flight tracking, internal auth). */
  interceptors?: Interceptor[];
  /** Extra plain-HTTP paths; return true when the request was handled. */
  admin?: (request: http.IncomingMessage, response: http.ServerResponse) => boolean;
}

/** A server that is listening. */
export interface RunningServer {
  readonly port: number;
  /** http://host:port, for clients. */
  readonly url: string;
  readonly health: HealthRegistry;
  readonly metrics: RpcMetrics;
  /**
   * Stops accepting connections, ends open streams, lets unary calls finish
   * for up to `graceMs`, then closes every connection.
   */
  close(graceMs?: number): Promise<void>;
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

const HTTP2_PREFACE = Buffer.from("PRI");
const OPEN_SERVICES = new Set([Health.typeName, ...reflectionServices.map((s) => s.typeName)]);

/**
 * The error a client sees: a database failure as its store mapping says (see
 * storeErrorAsConnectError); a full disk (or quota) as RESOURCE_EXHAUSTED, so
 * that the caller knows to free space or retry later, not UNKNOWN.
 */
function asConnectError(error: unknown): ConnectError {
  const errno = (error as { code?: unknown } | undefined)?.code;
  if (error instanceof Error && (errno === "ENOSPC" || errno === "EDQUOT")) {
    return new ConnectError(`the platform's disk is full: ${error.message}`, Code.ResourceExhausted, undefined, undefined, error);
  }
  return storeErrorAsConnectError(error) ?? ConnectError.from(error);
}

function loggingInterceptor(logger: Logger): Interceptor {
  // The name of each method is made once, not on every call.
  const rpcNames = new WeakMap<object, string>();
  return (next) => async (request) => {
    const started = performance.now();
    let rpc = rpcNames.get(request.method);
    if (rpc === undefined) rpcNames.set(request.method, (rpc = `${request.service.typeName}/${request.method.name}`));
    return observeCall(() => next(request), {
      ended(error) {
        if (error === undefined) logger.debug("rpc", { rpc, code: "OK", ms: Math.round(performance.now() - started) });
      },
      mapError(error) {
        // A stream ends this way whenever its client leaves or the server shuts down: nothing to
        // report. A client that left mid-write surfaces as the transport's own error (HTTP/2's
        // ERR_HTTP2_INVALID_STREAM), which only the call's aborted signal tells apart.
        const code = ConnectError.from(error).code;
        if (request.stream && (code === Code.Canceled || code === Code.Aborted || request.signal.aborted)) return error;
        const connectError = asConnectError(error);
        const log = connectError.code === Code.Internal || connectError.code === Code.Unknown ? logger.error : logger.warn;
        log("rpc failed", {
          rpc,
          code: Code[connectError.code],
          error: connectError.rawMessage,
          cause: connectError.cause instanceof Error ? connectError.cause : undefined,
          ms: Math.round(performance.now() - started),
        });
        return connectError;
      },
    });
  };
}

/** A node request's headers as fetch Headers (HTTP/2 pseudo-headers left out). */
function headersOf(request: NodeRequest): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    header.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return header;
}

function applyCors(options: CorsOptions, request: http.IncomingMessage, response: http.ServerResponse): boolean {
  const origin = request.headers.origin;
  if (!origin) return false;
  const allowed = options.allowedOrigins.includes("*") || options.allowedOrigins.includes(origin);
  if (!allowed) return false;
  response.setHeader("Access-Control-Allow-Origin", origin);
  response.setHeader("Vary", "Origin");
  response.setHeader("Access-Control-Expose-Headers", connectCors.exposedHeaders.join(", "));
  if (request.method !== "OPTIONS") return false;
  response.writeHead(204, {
    "Access-Control-Allow-Methods": connectCors.allowedMethods.join(", "),
    "Access-Control-Allow-Headers": [...connectCors.allowedHeaders, "Authorization"].join(", "),
    "Access-Control-Max-Age": "7200",
  });
  response.end();
  return true;
}

/**
 * Serves the Connect protocol, gRPC and gRPC-Web on one port, over HTTP/1.1
 * and cleartext HTTP/2, with reflection, health, metrics at /metrics and JSON
 * call logs.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger } = options;
  const metrics = createRpcMetrics(options.name);
  const inflight = createInflightCalls();
  const shutdown = new AbortController();
  // Every in-flight call listens on the shutdown signal; dozens at once are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const compressions = [compressionGzip, compressionBrotli];
  const interceptors: Interceptor[] = [
    metrics.interceptor,
    loggingInterceptor(logger),
    inflight.interceptor,
    jsonIntegerInterceptor(compressions, maxMessageBytes),
  ];
  interceptors.push(...(options.interceptors ?? []));
  const guards: CallGuard[] = [];
  if (options.internalToken) guards.push(internalTokenGuard(options.internalToken));
  if (options.guard) guards.push(options.guard);

  const serviceNames = options.services.map((s) => s.service.typeName);
  const router = createConnectRouter({
    interceptors,
    shutdownSignal: shutdown.signal,
    readMaxBytes: maxMessageBytes,
    acceptCompression: compressions,
  });
  for (const { service, impl } of options.services) router.service(service, impl);
  registerReflection(router, [...options.services.map((s) => s.service), Health]);
  const health = registerHealth(router, serviceNames);
  const rpcs = new Map(router.handlers.map((rpc) => [rpc.requestPath, rpc]));

  // What connectNodeAdapter does, plus INVALID_ARGUMENT for malformed messages (see remapClientFaults).
  const serveRpc = (request: NodeRequest, response: NodeResponse, rpc: UniversalHandler, values: ContextValues) => {
    const name = rpc.requestPath.slice(1);
    const onClientFault = (message: string) => logger.debug("rpc refused a malformed message", { rpc: name, code: "InvalidArgument", error: message });
    rpc(captureJsonBody(universalRequestFromNodeRequest(request, response, undefined, values), values))
      .then((answer) => remapClientFaults(answer, onClientFault))
      .then((answer) => universalResponseToNodeResponse(answer, response))
      .catch((error: unknown) => {
        if (ConnectError.from(error).code === Code.Aborted) return;
        logger.error("rpc handler failed", { rpc: name, cause: error instanceof Error ? error : undefined, error: String(error) });
      });
  };

  const serveOther = (request: NodeRequest, response: NodeResponse, path: string) => {
    if (request.method === "GET" && path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => {
          response.writeHead(200, { "content-type": metrics.registry.contentType });
          response.end(text);
        },
        (error: unknown) => {
          response.writeHead(500);
          response.end(String(error));
        },
      );
      return;
    }
    if (request.method === "GET" && path === "/healthz") {
      const serving = health.get("") === 1;
      response.writeHead(serving ? 200 : 503, { "content-type": "text/plain" });
      response.end(serving ? "ok\n" : "not serving\n");
      return;
    }
    if (options.admin?.(request as http.IncomingMessage, response as http.ServerResponse)) return;
    response.writeHead(404, { "content-type": "text/plain" });
    response.end("not found\n");
  };

  const admit = async (request: NodeRequest, service: string): Promise<ContextValues> => {
    const call = { service, header: headersOf(request), values: createContextValues() };
    for (const guard of guards) await guard(call);
    return call.values;
  };
  const handler = (request: NodeRequest, response: NodeResponse) => {
    if (options.cors && applyCors(options.cors, request as http.IncomingMessage, response as http.ServerResponse)) return;
    const path = (request.url ?? "").split("?")[0] ?? "";
    const rpc = rpcs.get(path);
    if (rpc === undefined) {
      serveOther(request, response, path);
      return;
    }
    if (guards.length === 0 || OPEN_SERVICES.has(rpc.service.typeName)) {
      serveRpc(request, response, rpc, createContextValues());
      return;
    }
    admit(request, rpc.service.typeName).then(
      (values) => serveRpc(request, response, rpc, values),
      (error: unknown) => {
        const refusal =
          error instanceof ConnectError
            ? error
            : (storeErrorAsConnectError(error) ?? new ConnectError("could not check the credential", Code.Internal, undefined, undefined, error));
        const log = refusal.code === Code.Internal ? logger.error : logger.warn;
        log("rpc refused", {
          rpc: path.slice(1),
          code: Code[refusal.code],
          error: refusal.rawMessage,
          cause: refusal.cause instanceof Error ? refusal.cause : undefined,
        });
        writeRefusal(request, response, refusal);
      },
    );
  };

  const h1 = http.createServer(handler);
  const h2 = http2.createServer({}, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  // Peek at the first bytes: the HTTP/2 preface starts with "PRI", anything
  // else is HTTP/1.1. The bytes go back with unshift before the handover.
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const route = () => {
      const head: Buffer | null = socket.read();
      if (head === null) {
        socket.once("readable", route);
        return;
      }
      socket.unshift(head);
      const isHttp2 = head.subarray(0, HTTP2_PREFACE.length).equals(HTTP2_PREFACE);
      (isHttp2 ? h2 : h1).emit("connection", socket);
    };
    socket.once("readable", route);
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  const port = (front.address() as net.AddressInfo).port;
  const registry = health;
  registry.set("", true);
  for (const name of serviceNames) registry.set(name, true);
  logger.info("serving", { port, host, services: serviceNames, internalAuth: Boolean(options.internalToken) });

  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${host}:${port}`,
    health: registry,
    metrics,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        registry.set("", false);
        for (const name of serviceNames) registry.set(name, false);
        front.close();
        inflight.endStreams();
        const finished = await inflight.drained(graceMs);
        if (!finished) logger.warn("calls still running after the grace period", { count: inflight.count });
        shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
        for (const session of sessions) session.close();
        h1.close();
        h1.closeAllConnections();
        await new Promise((resolve) => setTimeout(resolve, 50));
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
        logger.info("stopped", { port });
      })();
      return closing;
    },
  };
}
