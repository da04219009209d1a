import type * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { serveHttp1 } from "./http1-connection.js";
import type { ProxyCore } from "./http1-connection.js";
import { createHttp2Bridge } from "./http2-bridge.js";

/** Where the proxy finds the certificate of a hostname (by SNI). */
export interface CertificateSource {
  /** The TLS context serving `hostname`, or undefined when it has no certificate (yet). */
  contextFor(hostname: string): tls.SecureContext | undefined;
}

/** Options of startProxyServer. */
export interface ProxyServerOptions {
  host: string;
  /** 0 picks a free port. */
  httpPort: number;
  /** 0 picks a free port; undefined serves no HTTPS. */
  httpsPort?: number;
  certificates?: CertificateSource;
}

/** A listening proxy. */
export interface RunningProxyServer {
  readonly httpPort: number;
  /** 0 when HTTPS is not served. */
  readonly httpsPort: number;
  /** Stops listening and closes every client connection. */
  close(): Promise<void>;
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * Starts the data plane: plain HTTP, and HTTPS choosing the certificate by SNI
 * and HTTP/2 or HTTP/1.1 by ALPN.
 */
export async function startProxyServer(core: ProxyCore, options: ProxyServerOptions): Promise<RunningProxyServer> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };

  let httpPort = 0;
  const httpServer = net.createServer((socket) => {
    track(socket);
    serveHttp1(socket, core, "http", httpPort);
  });
  httpPort = await listen(httpServer, options.host, options.httpPort);

  let httpsPort = 0;
  let httpsServer: tls.Server | undefined;
  let bridge: http2.Http2Server | undefined;
  if (options.httpsPort !== undefined) {
    const certificates = options.certificates;
    bridge = createHttp2Bridge(core, () => httpsPort);
    const h2 = bridge;
    httpsServer = tls.createServer({
      ALPNProtocols: ["h2", "http/1.1"],
      SNICallback: (servername, callback) => {
        const context = certificates?.contextFor(servername.toLowerCase());
        if (context) callback(null, context);
        else callback(new Error(`no certificate for ${servername}`));
      },
    });
    httpsServer.on("secureConnection", (socket: tls.TLSSocket) => {
      track(socket);
      if (socket.alpnProtocol === "h2") h2.emit("connection", socket);
      else serveHttp1(socket, core, "https", httpsPort);
    });
    httpsServer.on("tlsClientError", () => {});
    httpsPort = await listen(httpsServer, options.host, options.httpsPort);
  }

  return {
    httpPort,
    httpsPort,
    async close() {
      const closing = [httpServer, httpsServer]
        .filter((server) => server !== undefined)
        .map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      for (const socket of sockets) socket.destroy();
      bridge?.close();
      await Promise.all(closing);
    },
  };
}
