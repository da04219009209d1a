import type * as net from "node:net";
import type { Logger } from "@berth/kit";
import type { RouteTable, Target } from "../route-table.js";
import { ChunkedBodyError, ChunkedScanner } from "./chunked-scanner.js";
import { HeadError, parseRequestHead, parseResponseHead, upstreamRequestHead } from "./http1-head.js";
import type { RequestHead } from "./http1-head.js";
import {
  ACME_CHALLENGE_PREFIX,
  badGatewayPage,
  badRequestPage,
  challengeResponse,
  httpsRedirect,
  noReplicaPage,
  reasonPhrase,
  unknownHostPage,
} from "./pages.js";
import type { LocalResponse } from "./pages.js";
import type { Lease, UpstreamConnection, UpstreamHandler, UpstreamPool } from "./upstream-pool.js";
import type { TrafficCounter } from "./traffic-counter.js";
import { closeFrame, GOING_AWAY, WebSocketFrames } from "./websocket-frames.js";
import type { UpstreamPools } from "./upstream-pools.js";
import { chooseRelease, releaseCookie, releaseSide } from "./release-split.js";

/** What every client connection of the proxy shares. */
export interface ProxyCore {
  readonly routes: RouteTable;
  readonly pools: UpstreamPools;
  /** How long a request waits for a healthy replica before a 503. */
  readonly replicaWaitMs: number;
  /** Whether plain HTTP requests for known hosts are redirected to HTTPS. */
  readonly redirectHttps: boolean;
  /** The public HTTPS port, for redirects. */
  readonly httpsPort: number;
  readonly maxHeaderBytes: number;
  /** A keep-alive client connection with no request is closed after this long. */
  readonly clientIdleTimeoutMs: number;
  /** The key authorization of a pending ACME http-01 challenge token. */
  answerChallenge(token: string): Promise<string | undefined>;
  /** Counts every answered request of an app, per process type and release. */
  readonly traffic: TrafficCounter;
  readonly logger: Logger;
}

const HEAD_END = Buffer.from("\r\n\r\n");
// Body bytes kept while no replica is connected yet; beyond it the client is paused.
const PENDING_BODY_LIMIT = 64 * 1024;
// How long a replica that refused a connection is avoided while others are left.
const REFUSED_BACKOFF_MS = 1000;
// While every replica refuses, retry this often until the replica wait runs out.
const REFUSED_RETRY_MS = 250;
// At the drain timeout, how long a WebSocket may take to reach the end of the frame it is sending.
const FRAME_END_WAIT_MS = 2000;

const enum Phase {
  Idle,
  Routing,
  Connecting,
  Forwarding,
  Tunnel,
  Closed,
}

const enum Framing {
  None,
  Length,
  Chunked,
  UntilClose,
}

/** Serves HTTP/1.x on one client connection (plain, or TLS after ALPN chose http/1.1). */
export function serveHttp1(socket: net.Socket, core: ProxyCore, scheme: "http" | "https", localPort: number): void {
  new ClientConnection(socket, core, scheme, localPort);
}

/**
 * One client connection. It carries one exchange at a time (pipelined
 * requests wait in `buffered`), parses only heads, and forwards bodies byte
 * for byte while tracking where they end.
 */
class ClientConnection implements UpstreamHandler, Lease {
  private phase = Phase.Idle;
  private parsing = false;
  private buffered: Buffer | null = null;
  private readonly clientAddress: string;

  private head: RequestHead | null = null;
  private target: Target | null = null;
  private pool: UpstreamPool | null = null;
  private upstream: UpstreamConnection | null = null;
  private tried: Set<string> | null = null;
  private waitStarted = 0;
  private waitController: AbortController | null = null;
  /** The release of the replica the exchange went to last (0 before one was picked). */
  private release = 0;
  /** Whether this exchange was counted already (a failure may be seen on more than one path). */
  private counted = false;
  /** During a canary: the release whose replicas take this exchange (0: any), and the one the client is to be kept on. */
  private splitRelease = 0;
  private setCookieRelease = 0;

  private requestDone = false;
  private bodyRemaining = 0;
  private bodyScanner: ChunkedScanner | null = null;
  private pendingBody: Buffer[] | null = null;
  private pendingBytes = 0;
  private bodySent = false;

  private responseHeadParsed = false;
  private responseBuffer: Buffer | null = null;
  private responseStarted = false;
  private responseStatus = 0;
  /** The replica's frames on a WebSocket tunnel, so that it is ended between two of them. */
  private frames: WebSocketFrames | null = null;
  /** The drain timeout passed: the tunnel ends at the next frame boundary. */
  private tunnelEnding = false;
  private responseFraming = Framing.None;
  private responseRemaining = 0;
  private responseScanner: ChunkedScanner | null = null;
  private responseReusable = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly core: ProxyCore,
    private readonly scheme: "http" | "https",
    private readonly localPort: number,
  ) {
    this.clientAddress = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    socket.setNoDelay(true);
    socket.setTimeout(core.clientIdleTimeoutMs);
    socket.on("data", (chunk: Buffer) => this.onClientData(chunk));
    socket.on("drain", () => this.upstream?.socket.resume());
    socket.on("timeout", () => {
      if (this.phase === Phase.Idle) socket.destroy();
    });
    socket.on("error", () => {});
    socket.on("close", () => this.onClientClose());
  }

  // ---- client side ----

  private onClientData(chunk: Buffer): void {
    switch (this.phase) {
      case Phase.Closed:
        return;
      case Phase.Tunnel:
        if (this.upstream && !this.upstream.socket.write(chunk)) this.socket.pause();
        return;
      case Phase.Idle:
        this.buffered = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
        this.next();
        return;
      default: {
        const leftover = this.requestDone ? chunk : this.takeBody(chunk);
        if (leftover) {
          // The next pipelined request: keep it until this exchange is over.
          this.buffered = this.buffered ? Buffer.concat([this.buffered, leftover]) : leftover;
          this.socket.pause();
        }
      }
    }
  }

  private next(): void {
    if (this.parsing) return;
    this.parsing = true;
    try {
      while (this.phase === Phase.Idle && this.buffered) {
        const buffered = this.buffered;
        const end = buffered.indexOf(HEAD_END);
        if (end < 0 || end > this.core.maxHeaderBytes) {
          if (buffered.length > this.core.maxHeaderBytes) {
            this.buffered = null;
            this.respond(badRequestPage(431, "The request head is too large."), true);
          }
          return;
        }
        let head: RequestHead;
        try {
          head = parseRequestHead(buffered.toString("latin1", 0, end));
        } catch (error) {
          if (!(error instanceof HeadError)) throw error;
          this.buffered = null;
          this.respond(badRequestPage(error.status, error.message), true);
          return;
        }
        this.buffered = buffered.length > end + 4 ? buffered.subarray(end + 4) : null;
        this.begin(head);
      }
    } finally {
      this.parsing = false;
    }
  }

  private begin(head: RequestHead): void {
    this.head = head;
    this.phase = Phase.Routing;
    if (head.chunked) {
      this.bodyScanner = new ChunkedScanner();
      this.requestDone = false;
    } else {
      this.bodyRemaining = Math.max(head.contentLength, 0);
      this.requestDone = this.bodyRemaining === 0;
    }
    if (this.buffered && !this.requestDone) {
      const rest = this.buffered;
      this.buffered = null;
      this.buffered = this.takeBody(rest);
      if (this.socket.destroyed) return;
    }
    if (this.scheme === "http" && head.target.startsWith(ACME_CHALLENGE_PREFIX)) {
      this.socket.pause();
      const token = head.target.slice(ACME_CHALLENGE_PREFIX.length);
      this.core.answerChallenge(token).then(
        (keyAuthorization) => this.respondLater(challengeResponse(keyAuthorization)),
        () => this.respondLater(challengeResponse(undefined)),
      );
      return;
    }
    const target = this.core.routes.current.lookup(head.host);
    if (!target) return this.respond(unknownHostPage(head.host));
    if (this.scheme === "http" && this.core.redirectHttps) return this.respond(httpsRedirect(head.host, head.target, this.core.httpsPort));
    this.target = target;
    const choice = chooseRelease(target, head.releaseCookie, Math.random);
    this.splitRelease = choice.release;
    this.setCookieRelease = choice.setCookie;
    this.dispatch(target);
  }

  /** Consumes request body bytes from `chunk`; returns what follows the body, if anything. */
  private takeBody(chunk: Buffer): Buffer | null {
    let end: number;
    if (this.bodyScanner) {
      try {
        end = this.bodyScanner.scan(chunk);
      } catch (error) {
        if (!(error instanceof ChunkedBodyError)) throw error;
        this.abort();
        return null;
      }
      if (end < 0) end = chunk.length;
      else this.requestDone = true;
    } else {
      end = Math.min(this.bodyRemaining, chunk.length);
      this.bodyRemaining -= end;
      if (this.bodyRemaining === 0) this.requestDone = true;
    }
    if (end > 0) this.sendBody(end === chunk.length ? chunk : chunk.subarray(0, end));
    return end < chunk.length ? chunk.subarray(end) : null;
  }

  private sendBody(body: Buffer): void {
    if (this.phase === Phase.Forwarding && this.upstream) {
      this.bodySent = true;
      if (!this.upstream.socket.write(body)) this.socket.pause();
      return;
    }
    (this.pendingBody ??= []).push(body);
    this.pendingBytes += body.length;
    if (this.pendingBytes > PENDING_BODY_LIMIT) this.socket.pause();
  }

  private onClientClose(): void {
    this.phase = Phase.Closed;
    this.waitController?.abort();
    this.waitController = null;
    this.dropUpstream();
  }

  /** Lease: the drain timeout of the replica passed. */
  abort(): void {
    if (this.phase === Phase.Tunnel && this.frames && !this.frames.closeSeen) return this.endTunnelGracefully();
    if (this.phase === Phase.Connecting || this.phase === Phase.Forwarding) this.countFailure();
    this.socket.destroy();
    this.dropUpstream();
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream) {
      upstream.handler = null;
      upstream.socket.destroy();
    }
    this.pool?.unhold(this);
    this.pool = null;
  }

  // ---- choosing and connecting a replica ----

  private dispatch(target: Target): void {
    const pool = this.core.pools.pick(releaseSide(target, this.splitRelease), this.tried ?? undefined);
    if (!pool) {
      this.waitForReplica(target);
      return;
    }
    this.pool = pool;
    this.release = pool.upstream.release;
    pool.hold(this);
    this.phase = Phase.Connecting;
    const upstream = pool.acquire(this);
    this.upstream = upstream;
    if (upstream.connected) this.onUpstreamConnect();
  }

  private waitForReplica(target: Target): void {
    const now = Date.now();
    if (this.waitStarted === 0) this.waitStarted = now;
    const remaining = this.core.replicaWaitMs - (now - this.waitStarted);
    const triedSome = this.tried !== null && this.tried.size > 0;
    if (remaining <= 0) return this.failNoReplica(target, triedSome);
    this.socket.pause();
    const controller = new AbortController();
    this.waitController = controller;
    const waitMs = triedSome ? Math.min(REFUSED_RETRY_MS, remaining) : remaining;
    this.core.routes.waitForUpstream(target.key, waitMs, controller.signal, this.tried ?? undefined).then((ready) => {
      if (this.waitController !== controller || this.phase === Phase.Closed) return;
      this.waitController = null;
      if (ready) return this.dispatch(ready);
      const current = this.core.routes.current.target(target.key) ?? target;
      if (triedSome && Date.now() - this.waitStarted < this.core.replicaWaitMs) {
        // Every replica refused: the one that went away may be back by now.
        this.tried?.clear();
        return this.dispatch(current);
      }
      this.failNoReplica(current, triedSome);
    });
  }

  private failNoReplica(target: Target, triedSome: boolean): void {
    const waited = Date.now() - this.waitStarted;
    this.respondLater(triedSome ? badGatewayPage(target.app, target.processType) : noReplicaPage(target.app, target.processType, waited));
  }

  onUpstreamConnect(): void {
    const upstream = this.upstream;
    const head = this.head;
    if (!upstream || !head) return;
    this.phase = Phase.Forwarding;
    const socket = upstream.socket;
    const requestHead = upstreamRequestHead(head, this.clientAddress, this.scheme, this.localPort);
    if (this.pendingBody) {
      socket.cork();
      socket.write(requestHead, "latin1");
      for (const body of this.pendingBody) socket.write(body);
      socket.uncork();
      this.bodySent = true;
      this.pendingBody = null;
      this.pendingBytes = 0;
    } else {
      socket.write(requestHead, "latin1");
    }
    if (!this.requestDone) this.socket.resume();
  }

  onUpstreamDrain(): void {
    if (this.phase === Phase.Tunnel || !this.requestDone) this.socket.resume();
  }

  onUpstreamClose(error: Error | undefined): void {
    const upstream = this.upstream;
    const pool = this.pool;
    if (!upstream || !pool || this.phase === Phase.Closed) return;
    this.upstream = null;
    if (this.phase === Phase.Tunnel) {
      pool.unhold(this);
      this.pool = null;
      // A replica that went away without closing its WebSocket: the client still learns why, when a frame was not cut.
      if (this.frames && !this.frames.closeSeen && this.frames.atBoundary) this.socket.end(closeFrame(GOING_AWAY, "the replica went away"));
      else this.socket.end();
      return;
    }
    if (!upstream.connected) {
      // Nothing was sent: any other replica (or this one again, later) may take the request.
      if ((error as NodeJS.ErrnoException | undefined)?.code === "ECONNREFUSED") pool.refusedUntil = Date.now() + REFUSED_BACKOFF_MS;
      this.retry(pool, true);
      return;
    }
    if (!this.responseHeadParsed && !this.responseStarted) {
      // A kept-alive connection the replica closed just as it was reused: safe to
      // send again when no body went out with it.
      const withoutBody = !this.bodySent && this.head !== null && !this.head.chunked && this.head.contentLength <= 0;
      if (upstream.reused && withoutBody) return this.retry(pool, false);
      pool.unhold(this);
      this.pool = null;
      const target = this.target;
      this.respond(badGatewayPage(target?.app ?? "", target?.processType ?? ""), true);
      return;
    }
    if (this.responseHeadParsed && this.responseFraming === Framing.UntilClose) {
      this.finish();
      return;
    }
    // The replica died mid-response: the client must see the truncation.
    pool.unhold(this);
    this.pool = null;
    this.countFailure();
    this.socket.destroy();
  }

  private retry(pool: UpstreamPool, excludeReplica: boolean): void {
    pool.unhold(this);
    this.pool = null;
    if (excludeReplica) (this.tried ??= new Set()).add(pool.upstream.id);
    this.phase = Phase.Routing;
    const target = this.target && (this.core.routes.current.target(this.target.key) ?? this.target);
    if (target) this.dispatch(target);
  }

  // ---- response side ----

  onUpstreamData(chunk: Buffer): void {
    if (this.phase === Phase.Tunnel) {
      if (this.frames) {
        const boundary = this.frames.scan(chunk, this.tunnelEnding);
        if (this.tunnelEnding && boundary >= 0) {
          if (boundary > 0) this.socket.write(chunk.subarray(0, boundary));
          this.sendGoingAway();
          return;
        }
      }
      if (!this.socket.write(chunk)) this.upstream?.socket.pause();
      return;
    }
    if (this.phase !== Phase.Forwarding) return;
    if (this.responseHeadParsed) {
      const end = this.scanResponseBody(chunk, 0);
      this.writeClient(end < 0 || end === chunk.length ? chunk : chunk.subarray(0, end));
      if (end >= 0) this.completeResponse(end < chunk.length);
      return;
    }
    const data = this.responseBuffer ? Buffer.concat([this.responseBuffer, chunk]) : chunk;
    this.responseBuffer = null;
    let start = 0;
    for (;;) {
      const headEnd = data.indexOf(HEAD_END, start);
      if (headEnd < 0) {
        if (data.length - start > this.core.maxHeaderBytes) return this.upstreamProtocolError();
        this.responseBuffer = data.subarray(start);
        return;
      }
      let bodyStart: number;
      try {
        const response = parseResponseHead(data.toString("latin1", start, headEnd));
        const status = response.status;
        this.responseStatus = status;
        bodyStart = headEnd + 4;
        this.responseReusable = response.reusable;
        if (this.head?.method === "HEAD" || status === 204 || status === 304) this.responseFraming = Framing.None;
        else if (response.chunked) {
          this.responseFraming = Framing.Chunked;
          this.responseScanner = new ChunkedScanner();
        } else if (response.contentLength >= 0) {
          this.responseFraming = Framing.Length;
          this.responseRemaining = response.contentLength;
        } else {
          this.responseFraming = Framing.UntilClose;
          this.responseReusable = false;
        }
      } catch (error) {
        if (!(error instanceof HeadError)) throw error;
        return this.upstreamProtocolError();
      }
      const status = this.responseStatus;
      if (status === 101) {
        if (!this.head?.upgrade) return this.upstreamProtocolError();
        this.writeClient(start === 0 ? data : data.subarray(start));
        this.beginTunnel();
        return;
      }
      if (status < 200) {
        // Interim responses (100 Continue, 103 Early Hints) go through as they are.
        this.writeClient(data.subarray(start, bodyStart));
        start = bodyStart;
        continue;
      }
      this.responseHeadParsed = true;
      const end = this.scanResponseBody(data, bodyStart);
      if (this.setCookieRelease !== 0) {
        // Keeps the client on the release it got (a canary's split): one more header line before the blank one.
        this.writeClient(Buffer.concat([data.subarray(start, headEnd), Buffer.from(`\r\nset-cookie: ${releaseCookie(this.setCookieRelease)}`, "latin1")]));
        this.writeClient(data.subarray(headEnd, end < 0 ? data.length : end));
      } else {
        this.writeClient(start === 0 && (end < 0 || end === data.length) ? data : data.subarray(start, end < 0 ? data.length : end));
      }
      if (end >= 0) this.completeResponse(end < data.length);
      return;
    }
  }

  /** Index just past the response in `data`, or -1 when the response goes on. */
  private scanResponseBody(data: Buffer, from: number): number {
    switch (this.responseFraming) {
      case Framing.None:
        return from;
      case Framing.Length: {
        const take = Math.min(this.responseRemaining, data.length - from);
        this.responseRemaining -= take;
        return this.responseRemaining === 0 ? from + take : -1;
      }
      case Framing.Chunked:
        try {
          return this.responseScanner!.scan(data, from);
        } catch (error) {
          if (!(error instanceof ChunkedBodyError)) throw error;
          this.responseReusable = false;
          this.countFailure();
          this.abort();
          return -1;
        }
      case Framing.UntilClose:
        return -1;
    }
  }

  private writeClient(data: Buffer): void {
    this.responseStarted = true;
    if (!this.socket.write(data) && this.upstream) this.upstream.socket.pause();
  }

  private completeResponse(trailingBytes: boolean): void {
    // Bytes after the end of a response mean the replica does not frame its
    // messages the way it said: that connection cannot be trusted again.
    if (trailingBytes) this.responseReusable = false;
    this.finish();
  }

  private upstreamProtocolError(): void {
    this.responseReusable = false;
    if (this.responseStarted) {
      this.countFailure();
      this.abort();
      return;
    }
    const target = this.target;
    this.dropUpstream();
    this.respond(badGatewayPage(target?.app ?? "", target?.processType ?? ""), true);
  }

  private beginTunnel(): void {
    if (this.target) this.core.traffic.answered(this.target, this.release, 101);
    this.counted = true;
    this.phase = Phase.Tunnel;
    if (this.head?.websocket) this.frames = new WebSocketFrames();
    this.pool?.tunnel(this);
    this.socket.setTimeout(0);
    const upstream = this.upstream;
    if (this.buffered && upstream) {
      upstream.socket.write(this.buffered);
      this.buffered = null;
    }
    this.socket.resume();
  }

  /**
   * Ends a WebSocket whose replica's drain timeout passed with a close frame
   * (1001) at the next frame boundary, so that the client sees a clean close
   * it can reconnect from rather than a cut connection (1006).
   */
  private endTunnelGracefully(): void {
    if (this.tunnelEnding) return;
    this.tunnelEnding = true;
    if (this.frames!.atBoundary) return this.sendGoingAway();
    // The replica is in the middle of a frame: let it finish that frame, not forever.
    this.upstream?.socket.resume();
    setTimeout(() => this.socket.destroy(), FRAME_END_WAIT_MS).unref();
  }

  private sendGoingAway(): void {
    this.phase = Phase.Closed;
    this.socket.end(closeFrame(GOING_AWAY, "the replica is shutting down"));
    this.dropUpstream();
    // A client that does not answer the close frame is not waited for.
    setTimeout(() => this.socket.destroy(), FRAME_END_WAIT_MS).unref();
  }

  private finish(): void {
    const upstream = this.upstream;
    const pool = this.pool;
    this.upstream = null;
    this.pool = null;
    if (upstream && pool) {
      if (this.responseReusable && this.requestDone) pool.release(upstream);
      else {
        upstream.handler = null;
        upstream.socket.destroy();
      }
    }
    pool?.unhold(this);
    if (this.target && !this.counted) this.core.traffic.answered(this.target, this.release, this.responseStatus);
    const keepAlive = this.head?.keepAlive === true && this.requestDone && this.responseFraming !== Framing.UntilClose;
    this.endExchange(keepAlive);
  }

  // ---- answers of the proxy itself ----

  private respond(response: LocalResponse, forceClose = false): void {
    // Once a request is routed, every answer of the proxy itself is a failure (502, 503).
    if (this.target) this.countFailure();
    const close = forceClose || this.head === null || !this.head.keepAlive || !this.requestDone;
    const body = Buffer.from(response.body);
    let text = `HTTP/1.1 ${response.status} ${reasonPhrase(response.status)}\r\n`;
    for (const [name, value] of Object.entries(response.headers)) text += `${name}: ${value}\r\n`;
    text += `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n`;
    this.socket.cork();
    this.socket.write(text, "latin1");
    if (this.head?.method !== "HEAD") this.socket.write(body);
    this.socket.uncork();
    this.endExchange(!close);
  }

  private respondLater(response: LocalResponse): void {
    if (this.phase === Phase.Closed) return;
    this.respond(response);
  }

  /** Counts the exchange as failed by the platform, once. */
  private countFailure(): void {
    if (this.counted || !this.target) return;
    this.counted = true;
    this.core.traffic.failed(this.target, this.release);
  }

  private endExchange(keepAlive: boolean): void {
    this.head = null;
    this.target = null;
    this.release = 0;
    this.counted = false;
    this.splitRelease = 0;
    this.setCookieRelease = 0;
    this.responseStatus = 0;
    this.tried = null;
    this.waitStarted = 0;
    this.bodyScanner = null;
    this.bodyRemaining = 0;
    this.pendingBody = null;
    this.pendingBytes = 0;
    this.bodySent = false;
    this.responseHeadParsed = false;
    this.responseBuffer = null;
    this.responseStarted = false;
    this.responseScanner = null;
    this.responseRemaining = 0;
    this.responseFraming = Framing.None;
    if (!keepAlive) {
      this.phase = Phase.Closed;
      this.buffered = null;
      this.socket.end();
      return;
    }
    this.phase = Phase.Idle;
    this.requestDone = false;
    this.socket.resume();
    this.next();
  }
}
