import * as http from "node:http";

/**
 * Posts headers and the start of a body over HTTP/1.1 and never finishes it:
 * what a server answers before it has read the whole body (a refused token, a
 * message over the limit). Resolves with the answer's status and body.
 */
export function postWithoutEnd(url: string, headers: Record<string, string>, bodyStart: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", headers: { ...headers, "transfer-encoding": "chunked" } }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        request.destroy();
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    request.on("error", reject);
    request.write(bodyStart);
  });
}
