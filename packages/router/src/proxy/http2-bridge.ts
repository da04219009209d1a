import * as http from "node:http";
import * as http2 from "node:http2";
import type { Target } from "../route-table.js";
import type { ProxyCore } from "./http1-connection.js";
import { hostOf } from "./http1-head.js";
import { badGatewayPage, badRequestPage, noReplicaPage, unknownHostPage } from "./pages.js";
import type { LocalResponse } from "./pages.js";
import type { Lease, UpstreamPool } from "./upstream-pool.js";
import { chooseRelease, releaseCookie, releaseFromCookies, releaseSide } from "./release-split.js";
import type { ReleaseChoice } from "./release-split.js";

// Connection-specific headers may not cross from HTTP/2 to HTTP/1.1 or back (RFC 9113 8.2.2).
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-for",
]);

/**
 * An HTTP/2 server (for TLS connections that chose h2 by ALPN) whose streams
 * are forwarded to the replicas over HTTP/1.1 keep-alive connections.
 */
export function createHttp2Bridge(core: ProxyCore, localPort: () => number): http2.Http2Server {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    new BridgedStream(core, stream, headers, localPort()).start();
  });
  server.on("sessionError", () => {});
  return server;
}

class BridgedStream implements Lease {
  private pool: UpstreamPool | null = null;
  private request: http.ClientRequest | null = null;
  private readonly tried = new Set<string>();
  private readonly started = Date.now();
  private readonly closed = new AbortController();
  private readonly host: string;
  /** During a canary: the release whose replicas take this stream, and the one the client is to be kept on. */
  private choice: ReleaseChoice = { release: 0, setCookie: 0 };

  constructor(
    private readonly core: ProxyCore,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly localPort: number,
  ) {
    this.host = hostOf(String(headers[":authority"] ?? headers.host ?? ""));
    stream.on("error", () => {});
    stream.on("close", () => {
      this.closed.abort();
      this.request?.destroy();
      this.release();
    });
  }

  start(): void {
    if (this.headers[":method"] === "CONNECT") return this.answer(badRequestPage(501, "CONNECT is not supported."));
    const target = this.core.routes.current.lookup(this.host);
    if (!target) return this.answer(unknownHostPage(this.host));
    const cookies = this.headers.cookie;
    this.choice = chooseRelease(target, releaseFromCookies(Array.isArray(cookies) ? cookies.join("; ") : cookies), Math.random);
    this.dispatch(target);
  }

  abort(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  private dispatch(target: Target): void {
    if (this.stream.destroyed) return;
    const pool = this.core.pools.pick(releaseSide(target, this.choice.release), this.tried);
    if (!pool) {
      const remaining = this.core.replicaWaitMs - (Date.now() - this.started);
      const fail = () => {
        if (this.stream.destroyed) return;
        this.core.traffic.failed(target, 0);
        this.answer(
          this.tried.size > 0 ? badGatewayPage(target.app, target.processType) : noReplicaPage(target.app, target.processType, Date.now() - this.started),
        );
      };
      if (remaining <= 0) return fail();
      this.core.routes.waitForUpstream(target.key, remaining, this.closed.signal, this.tried).then((ready) => (ready ? this.dispatch(ready) : fail()));
      return;
    }
    this.pool = pool;
    pool.hold(this);
    const release = pool.upstream.release;
    const withoutBody = this.stream.endAfterHeaders;
    const request = http.request({
      host: pool.upstream.host,
      port: pool.upstream.port,
      method: String(this.headers[":method"]),
      path: String(this.headers[":path"] ?? "/"),
      headers: this.upstreamHeaders(),
      agent: pool.agent(),
    });
    this.request = request;
    request.on("response", (response) => {
      const headers: http2.OutgoingHttpHeaders = { ":status": response.statusCode ?? 502 };
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      }
      if (this.choice.setCookie !== 0) headers["set-cookie"] = [...(response.headers["set-cookie"] ?? []), releaseCookie(this.choice.setCookie)];
      if (this.stream.destroyed) return response.destroy();
      this.core.traffic.answered(target, release, response.statusCode ?? 0);
      this.stream.respond(headers);
      response.pipe(this.stream);
      response.on("end", () => this.release());
    });
    request.on("error", (error: NodeJS.ErrnoException) => {
      if (this.request !== request) return;
      this.request = null;
      this.release();
      if (this.stream.headersSent || this.stream.destroyed) return this.stream.destroy();
      if (withoutBody && error.code === "ECONNREFUSED") {
        pool.refusedUntil = Date.now() + 1000;
        this.tried.add(pool.upstream.id);
        return this.dispatch(this.core.routes.current.target(target.key) ?? target);
      }
      this.core.traffic.failed(target, release);
      this.answer(badGatewayPage(target.app, target.processType));
    });
    if (withoutBody) request.end();
    else this.stream.pipe(request);
  }

  private upstreamHeaders(): http.OutgoingHttpHeaders {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(this.headers)) {
      if (value !== undefined && !name.startsWith(":") && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const authority = String(this.headers[":authority"] ?? this.headers.host ?? "");
    const remote = (this.stream.session?.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const previous = this.headers["x-forwarded-for"];
    headers.host = authority;
    headers["x-forwarded-for"] = previous ? `${String(previous)}, ${remote}` : remote;
    headers["x-forwarded-proto"] = "https";
    headers["x-forwarded-host"] = authority;
    headers["x-forwarded-port"] = String(this.localPort);
    return headers;
  }

  private answer(response: LocalResponse): void {
    if (this.stream.destroyed || this.stream.headersSent) return;
    this.stream.respond({ ":status": response.status, ...response.headers });
    this.stream.end(this.headers[":method"] === "HEAD" ? undefined : response.body);
  }

  private release(): void {
    this.pool?.unhold(this);
    this.pool = null;
  }
}
