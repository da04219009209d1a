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
  const session = http2.connect(`https://${servername}:${port}`, {
    ca,
    servername,
    host: "127.0.0.1",
    lookup: (_host, _options, callback) => callback(null, "127.0.0.1", 4),
  } as http2.SecureClientSessionOptions);
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request({ ":path": path });
      let status = 0;
      let body = "";
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
      stream.on("end", () => resolve({ status, body, alpn: session.alpnProtocol ?? "" }));
      stream.on("error", reject);
      stream.end();
    });
  } finally {
    session.close();
  }
}
