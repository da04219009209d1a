import * as http from "node:http";
import * as net from "node:net";
import type { Upstream } from "../route-table.js";

/** Something holding a replica busy: an exchange, a WebSocket tunnel or an HTTP/2 bridge request. */
export interface Lease {
  /** Ends the work at once (used when a drain times out). */
  abort(): void;
}

/** Receives the events of the upstream connection it is using. */
export interface UpstreamHandler {
  onUpstreamConnect(): void;
  onUpstreamData(chunk: Buffer): void;
  onUpstreamDrain(): void;
  onUpstreamClose(error: Error | undefined): void;
}

/**
 * One connection to a replica. Its listeners are attached once and forward to
 * whichever exchange uses it now, so reusing a connection costs no listener churn.
 */
export class UpstreamConnection {
  handler: UpstreamHandler | null = null;
  connected = false;
  /** Whether it already carried an exchange (a reused socket may have been closed by the replica meanwhile). */
  reused = false;
  idleSince = 0;
  private error: Error | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly pool: UpstreamPool,
  ) {
    socket.on("connect", () => {
      this.connected = true;
      this.handler?.onUpstreamConnect();
    });
    socket.on("data", (chunk: Buffer) => {
      if (this.handler) this.handler.onUpstreamData(chunk);
      else socket.destroy(); // bytes nobody asked for: the connection is unusable
    });
    socket.on("drain", () => this.handler?.onUpstreamDrain());
    socket.on("error", (error) => {
      this.error = error;
    });
    socket.on("close", () => {
      const handler = this.handler;
      this.handler = null;
      this.pool.forget(this);
      handler?.onUpstreamClose(this.error);
    });
  }
}

/**
 * The connections of the proxy to one replica: idle keep-alive sockets for
 * HTTP/1.1 exchanges, an http.Agent for the HTTP/2 bridge, and the leases
 * that keep the replica busy, so that a draining replica is known to be done.
 */
export class UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly leases = new Set<Lease>();
  /** The leases that are WebSocket (or other upgraded) tunnels. */
  private readonly tunnels = new Set<Lease>();
  private agentInstance: http.Agent | undefined;
  private retirement: { onQuiet: (() => void) | undefined; onEmpty: () => void } | undefined;
  /** Until when the balancer avoids this replica after it refused a connection. */
  refusedUntil = 0;

  constructor(
    readonly upstream: Upstream,
    private readonly idleTimeoutMs: number,
  ) {}

  /** Exchanges, tunnels and bridge requests in progress. */
  get busy(): number {
    return this.leases.size;
  }

  /** Whether the replica left the route table and is waiting for its work to end. */
  get retiring(): boolean {
    return this.retirement !== undefined;
  }

  /**
   * A connection for `handler`: an idle keep-alive one when there is one
   * (already connected), otherwise a new one whose connect event will follow.
   */
  acquire(handler: UpstreamHandler): UpstreamConnection {
    const now = Date.now();
    for (;;) {
      const connection = this.idle.pop();
      if (!connection) break;
      if (!connection.socket.destroyed && now - connection.idleSince < this.idleTimeoutMs) {
        connection.handler = handler;
        connection.reused = true;
        return connection;
      }
      connection.socket.destroy();
    }
    const socket = net.connect(this.upstream.port, this.upstream.host);
    socket.setNoDelay(true);
    const connection = new UpstreamConnection(socket, this);
    connection.handler = handler;
    return connection;
  }

  /** Keeps a connection for the next exchange, unless the replica is retiring. */
  release(connection: UpstreamConnection): void {
    connection.handler = null;
    if (this.retiring || connection.socket.destroyed) {
      connection.socket.destroy();
      return;
    }
    // Paused by backpressure during the last response: an idle connection must
    // stay readable, or the next response (or the replica closing it) goes unseen.
    if (connection.socket.isPaused()) connection.socket.resume();
    connection.idleSince = Date.now();
    this.idle.push(connection);
  }

  /** Forgets a connection that closed. */
  forget(connection: UpstreamConnection): void {
    const index = this.idle.lastIndexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
  }

  /** Closes idle connections older than the idle timeout (the replica would close them soon anyway). */
  sweep(): void {
    const now = Date.now();
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const connection = this.idle[i]!;
      if (now - connection.idleSince >= this.idleTimeoutMs) {
        this.idle.splice(i, 1);
        connection.socket.destroy();
      }
    }
  }

  /** The keep-alive agent used by the HTTP/2 bridge. */
  agent(): http.Agent {
    this.agentInstance ??= new http.Agent({ keepAlive: true, timeout: this.idleTimeoutMs });
    return this.agentInstance;
  }

  /** Marks the replica busy until `unhold` is called with the same lease. */
  hold(lease: Lease): void {
    this.leases.add(lease);
  }

  /** A lease became a tunnel: it no longer keeps the replica from being told to stop. */
  tunnel(lease: Lease): void {
    if (!this.leases.has(lease)) return;
    this.tunnels.add(lease);
    this.checkRetired();
  }

  /** Ends a lease taken with `hold`. */
  unhold(lease: Lease): void {
    this.tunnels.delete(lease);
    if (this.leases.delete(lease)) this.checkRetired();
  }

  /**
   * The replica left the route table: close idle connections now, call
   * `onQuiet` once no request is in flight (tunnels may stay: the replica
   * closes them itself once told to stop) and `onEmpty` once the last lease ends.
   */
  retire(onQuiet: () => void, onEmpty: () => void): void {
    this.retirement = { onQuiet, onEmpty };
    this.closeIdle();
    this.checkRetired();
  }

  /** The replica came back before it was retired. */
  revive(): void {
    this.retirement = undefined;
  }

  /** Ends every lease at once: the drain timeout passed. */
  abortAll(): void {
    for (const lease of [...this.leases]) lease.abort();
  }

  /** Closes every connection, for shutdown. */
  close(): void {
    this.abortAll();
    this.closeIdle();
  }

  private closeIdle(): void {
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
    this.agentInstance?.destroy();
    this.agentInstance = undefined;
  }

  private checkRetired(): void {
    const retirement = this.retirement;
    if (retirement === undefined || this.leases.size > this.tunnels.size) return;
    const onQuiet = retirement.onQuiet;
    retirement.onQuiet = undefined;
    onQuiet?.();
    if (this.leases.size === 0 && this.retirement === retirement) {
      this.retirement = undefined;
      retirement.onEmpty();
    }
  }
}
