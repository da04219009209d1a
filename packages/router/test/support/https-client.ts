import * as http2 from "node:http2";
import * as https from "node:https";

/** GETs `path` over HTTPS from the proxy, presenting `servername` by SNI and trusting only `ca`. */
export function httpsGet(port: number, servername: string, ca: string, path = "/"): Promise<{ status: number; body: string; alpn: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path, servername, headers: { host: servername }, ca, agent: false }, (response) => {
        let body = "";
        response.on("data", (chunk: Buffer) => (body += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body, alpn: "http/1.1" }));
      })
      .on("error", reject);
  });
}

/** GETs `path` over HTTP/2 (ALPN h2) from the proxy, trusting only `ca`. */
export async function http2Get(port: number, servername: string, ca: string, path = "/"): Promise<{ status: number; body: string; alpn: string }> {
  const { status, body, alpn } = await http2Exchange(port, servername, ca, path);
  return { status, body, alpn };
}

/** GETs `path` over HTTP/2 with extra request `headers`; answers the response headers too. */
export async function http2Exchange(
  port: number,
  servername: string,
  ca: string,
  path = "/",
  headers: http2.OutgoingHttpHeaders = {},
): Promise<{ status: number; body: string; alpn: string; headers: http2.IncomingHttpHeaders }> {
  const session = http2.connect(`https://${servername}:${port}`, {
    ca,
    servername,
    host: "127.0.0.1",
    lookup: (_host, _options, callback) => callback(null, "127.0.0.1", 4),
  } as http2.SecureClientSessionOptions);
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request({ ":path": path, ...headers });
      let response: http2.IncomingHttpHeaders = {};
      let body = "";
      stream.on("response", (received) => (response = received));
      stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
      stream.on("end", () => resolve({ status: Number(response[":status"]), body, alpn: session.alpnProtocol ?? "", headers: response }));
      stream.on("error", reject);
      stream.end();
    });
  } finally {
    session.close();
  }
}
