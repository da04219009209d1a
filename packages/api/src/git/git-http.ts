import { spawn } from "node:child_process";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { dnsLabelProblem } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { Authenticator, Caller } from "../auth.js";
import { gitEnvironment } from "./git-command.js";
import type { PushHooks } from "./push-hooks.js";
import type { GitRepositories } from "./repositories.js";

/** What the git remote needs from the rest of the API. */
export interface GitHttpDeps {
  authenticator: Authenticator;
  repositories: GitRepositories;
  hooks: PushHooks;
  /** The team owning `app`, or undefined when there is no such app. */
  ownerOf(app: string): Promise<string | undefined>;
  logger: Logger;
}

/** The smart HTTP endpoints of git; the dumb protocol (plain files) is not served. */
const GIT_PATH = /^\/git\/([^/]+)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const SERVICES = new Set(["git-upload-pack", "git-receive-pack"]);
/** The most one push may send, so that a push cannot fill the disk of the API. */
const MAX_PUSH_BYTES = "512m";

/** A refusal before git runs, with the HTTP status git reports. */
class GitRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The token of a git request: the password of HTTP basic auth (git sends
 * what the remote URL or a credential helper holds; the user name is
 * ignored, as Heroku does), or a bearer token.
 */
function tokenOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization ?? "";
  const basic = /^Basic\s+(\S+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    return colon < 0 ? undefined : decoded.slice(colon + 1) || undefined;
  }
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1];
}

/** What the CGI printed before its body: the status and the headers to pass on. */
function parseCgiHead(head: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}

/**
 * The git remote of every app at `/git/<app>.git`, served by git's own
 * `git http-backend` (CGI) on the API's port. The token is checked on the
 * headers before any of the body is read; only the app's team may fetch or
 * push; a push runs the pre-receive hook that deploys it (see push-deploy).
 * Returns a handler for the server's extra paths: true when it took the request.
 */
export function createGitHttp(deps: GitHttpDeps): (request: IncomingMessage, response: ServerResponse) => boolean {
  async function admit(request: IncomingMessage, app: string): Promise<Caller & { team: string }> {
    const token = tokenOf(request);
    const caller = token === undefined ? undefined : await deps.authenticator.authenticate(token);
    if (caller === undefined) {
      // The challenge makes git ask its credential helpers (or the user) instead of failing without a word.
      throw new GitRefusal(401, token === undefined ? "a berth token is needed as the password" : "the token is unknown or revoked", {
        "WWW-Authenticate": 'Basic realm="berth", charset="UTF-8"',
      });
    }
    if (caller.team === undefined) throw new GitRefusal(403, "admin tokens manage teams; push with a team token");
    // Another team's app is not found, exactly like a missing one, so its existence never leaks.
    if ((await deps.ownerOf(app)) !== caller.team) throw new GitRefusal(404, `repository ${app}.git not found`);
    return { ...caller, team: caller.team };
  }

  async function serve(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const match = GIT_PATH.exec(url.pathname);
    if (match === null || dnsLabelProblem(match[1]!) !== undefined) throw new GitRefusal(404, "not a berth git repository");
    const app = match[1]!;
    const endpoint = match[2]!;
    const service = endpoint === "info/refs" ? url.searchParams.get("service") : endpoint;
    if (service === null || !SERVICES.has(service)) throw new GitRefusal(403, "only git's smart HTTP protocol is served");
    if (request.method !== (endpoint === "info/refs" ? "GET" : "POST")) throw new GitRefusal(405, `${request.method} is not allowed here`);
    const caller = await admit(request, app);
    const repository = await deps.repositories.ensure(app);
    const push =
      service === "git-receive-pack" && endpoint !== "info/refs" ? deps.hooks.open({ team: caller.team, tokenId: caller.tokenId, app, repository }) : undefined;
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value.join(", ") : (value ?? "");
    };
    const cgi: Record<string, string> = {
      GIT_PROJECT_ROOT: deps.repositories.root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: `/${app}.git/${endpoint}`,
      REQUEST_METHOD: request.method ?? "GET",
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: header("content-type"),
      HTTP_CONTENT_ENCODING: header("content-encoding"),
      GIT_PROTOCOL: header("git-protocol"),
      // receive-pack is served only to an authenticated user; the team is who that is.
      REMOTE_USER: caller.team,
      REMOTE_ADDR: request.socket.remoteAddress ?? "",
    };
    if (request.headers["content-length"] !== undefined) cgi.CONTENT_LENGTH = header("content-length");
    const env = gitEnvironment(
      { "core.hooksPath": deps.hooks.hooksDirectory, "receive.maxInputSize": MAX_PUSH_BYTES, "http.receivepack": "true" },
      { ...cgi, ...push?.env },
    );
    const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    child.on("error", (error) => deps.logger.error("could not run git http-backend", { error }));
    child.stderr.on("data", (chunk: Buffer) => deps.logger.debug("git http-backend", { app, stderr: chunk.toString("utf8").trim() }));
    // A pusher that goes away ends the git process; a deploy already under way goes on in the platform.
    response.on("close", () => {
      if (child.exitCode === null) child.kill();
    });
    request.pipe(child.stdin);
    child.stdin.on("error", () => {});
    let head = Buffer.alloc(0);
    let started = false;
    child.stdout.on("data", (chunk: Buffer) => {
      if (started) {
        response.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const text = head.toString("latin1");
      const end = /\r?\n\r?\n/.exec(text);
      if (end === null) return;
      started = true;
      const { status, headers } = parseCgiHead(text.slice(0, end.index));
      response.writeHead(status, { ...headers, "Cache-Control": "no-cache" });
      response.write(head.subarray(end.index + end[0].length));
    });
    await exited;
    push?.close();
    if (!started && !response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
    response.end();
  }

  return (request, response) => {
    const url = new URL(request.url ?? "/", "http://berth.invalid");
    if (!url.pathname.startsWith("/git/")) return false;
    serve(request, response, url).catch((error: unknown) => {
      const refusal =
        error instanceof GitRefusal
          ? error
          : new GitRefusal(ConnectError.from(error).code === Code.Unavailable ? 503 : 500, `the git remote failed: ${(error as Error).message}`);
      if (refusal.status >= 500) deps.logger.error("git request failed", { path: url.pathname, error });
      // The body is never read on a refusal: the connection closes instead of draining it.
      if (!response.headersSent) response.writeHead(refusal.status, { "content-type": "text/plain", connection: "close", ...refusal.headers });
      response.end(`${refusal.message}\n`);
    });
    return true;
  };
}
