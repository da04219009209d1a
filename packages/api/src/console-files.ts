import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import type * as http from "node:http";
import type { Logger } from "@berth/kit";
import { ensureBundle } from "@berth/console";

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

// The page may talk to its own origin only: the RPCs are on it, and nothing
// else (no inline script, no other host) can run or be reached from it.
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

interface ConsoleFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** Serves the console's files on the API's own port, beside the RPCs; answers true when it handled the request. */
export type ConsoleHandler = (request: http.IncomingMessage, response: http.ServerResponse) => boolean;

function readConsoleFiles(dir: string): Map<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[name.slice(name.lastIndexOf(".") + 1)];
    if (contentType === undefined) continue;
    const body = readFileSync(`${dir}${name}`);
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    files.set(name === "index.html" ? "/" : `/${name}`, { body, contentType, etag });
  }
  return files;
}

/**
 * Loads the web console (bundling it first when its sources are newer than
 * the bundle `npm install` made) and returns the handler that serves it. When
 * it cannot be built, the API still serves its RPCs and `/` says why.
 */
export async function loadConsole(logger: Logger): Promise<ConsoleHandler> {
  let files: Map<string, ConsoleFile>;
  try {
    files = readConsoleFiles(await ensureBundle());
  } catch (error) {
    logger.error("the web console could not be built; run `npm install`", { cause: error instanceof Error ? error : undefined, error: String(error) });
    files = new Map();
  }
  return (request, response) => {
    if (request.method !== "GET" && request.method !== "HEAD") return false;
    const path = (request.url ?? "").split("?")[0] ?? "";
    const file = files.get(path);
    if (file === undefined) {
      if (path !== "/") return false;
      response.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
      response.end("the web console is not built: run `npm install`\n");
      return true;
    }
    const headers = { ...SECURITY_HEADERS, "content-type": file.contentType, etag: file.etag, "cache-control": "no-cache" };
    if (request.headers["if-none-match"] === file.etag) {
      response.writeHead(304, headers);
      response.end();
      return true;
    }
    response.writeHead(200, { ...headers, "content-length": String(file.body.length) });
    response.end(request.method === "HEAD" ? undefined : file.body);
    return true;
  };
}
