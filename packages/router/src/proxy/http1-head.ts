/**
 * HTTP/1.1 message heads, parsed just far enough to route and frame them.
 * The proxy forwards bytes, not objects: only the headers that decide routing,
 * framing and hop-by-hop handling are looked at, and the request head is
 * rebuilt once with the X-Forwarded-* headers added.
 */

import { releaseFromCookies } from "./release-split.js";

/** A request head that could not be accepted, with the status to answer. */
export class HeadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The parts of a request head the proxy needs. */
export interface RequestHead {
  method: string;
  /** The request target as sent (origin-form `/path?query` in practice). */
  target: string;
  /** The host to route on: lowercase, without port. */
  host: string;
  /** The Host header as sent, for X-Forwarded-Host and redirects. */
  authority: string;
  http10: boolean;
  /** -1 without a Content-Length. */
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  /** A protocol upgrade (WebSocket) was asked for. */
  upgrade: boolean;
  /** The upgrade asked for is to WebSocket: the tunnel carries its frames. */
  websocket: boolean;
  /** The header lines to forward, each ending in CRLF, hop-by-hop and X-Forwarded-* removed. */
  forwardedLines: string;
  /** The X-Forwarded-For the client sent, extended rather than replaced. */
  forwardedFor: string | undefined;
  /** The release the client's `berth-release` cookie keeps it on (0: none). */
  releaseCookie: number;
}

/** The parts of a response head the proxy needs. */
export interface ResponseHead {
  status: number;
  /** -1 without a Content-Length. */
  contentLength: number;
  chunked: boolean;
  /** The upstream connection may carry another request after this response. */
  reusable: boolean;
}

// Header names are compared in lowercase; only names of these lengths can matter,
// which spares lowercasing every other header of every request.
const INTERESTING_LENGTHS = new Set([2, 4, 6, 7, 10, 14, 15, 16, 17]);
const STANDARD_CONNECTION_TOKENS = new Set(["close", "keep-alive", "upgrade"]);

/** Parses the request head in `text` (the bytes before the blank line, as latin1). */
export function parseRequestHead(text: string): RequestHead {
  const lineEnd = text.indexOf("\r\n");
  const requestLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const firstSpace = requestLine.indexOf(" ");
  const lastSpace = requestLine.lastIndexOf(" ");
  if (firstSpace <= 0 || lastSpace === firstSpace) throw new HeadError(400, "malformed request line");
  const method = requestLine.slice(0, firstSpace);
  const target = requestLine.slice(firstSpace + 1, lastSpace);
  const version = requestLine.slice(lastSpace + 1);
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") throw new HeadError(505, "only HTTP/1.0 and HTTP/1.1 are served here");
  if (target === "" || target.includes(" ")) throw new HeadError(400, "malformed request target");

  let authority = "";
  let hostSeen = false;
  let contentLength = -1;
  let chunked = false;
  let transferEncoding = false;
  let connectionTokens: string[] = [];
  let upgradeHeader = "";
  let forwardedFor: string | undefined;
  let cookies: string | undefined;
  let lines = "";

  let position = lineEnd < 0 ? text.length : lineEnd + 2;
  while (position < text.length) {
    let next = text.indexOf("\r\n", position);
    if (next < 0) next = text.length;
    const line = text.slice(position, next);
    position = next + 2;
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) throw new HeadError(400, "obsolete header line folding is not accepted");
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HeadError(400, "malformed header line");
    const last = line.charCodeAt(colon - 1);
    if (last === 32 || last === 9) throw new HeadError(400, "whitespace before a header colon is not accepted");
    if (!INTERESTING_LENGTHS.has(colon)) {
      lines += `${line}\r\n`;
      continue;
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (name) {
      case "host":
        if (hostSeen) throw new HeadError(400, "more than one Host header");
        hostSeen = true;
        authority = value;
        lines += `${line}\r\n`;
        break;
      case "content-length": {
        if (!/^[0-9]{1,15}$/.test(value)) throw new HeadError(400, "invalid Content-Length");
        const length = Number(value);
        if (contentLength !== -1 && contentLength !== length) throw new HeadError(400, "conflicting Content-Length headers");
        contentLength = length;
        lines += `${line}\r\n`;
        break;
      }
      case "transfer-encoding":
        if (transferEncoding || value.toLowerCase() !== "chunked") {
          throw new HeadError(501, "only the chunked transfer coding is supported");
        }
        transferEncoding = true;
        chunked = true;
        lines += `${line}\r\n`;
        break;
      case "connection":
        connectionTokens = connectionTokens.concat(
          value
            .toLowerCase()
            .split(",")
            .map((token) => token.trim()),
        );
        break;
      case "upgrade":
        upgradeHeader = value;
        break;
      case "cookie":
        cookies = cookies === undefined ? value : `${cookies}; ${value}`;
        lines += `${line}\r\n`;
        break;
      case "x-forwarded-for":
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        break;
      case "keep-alive":
      case "proxy-connection":
      case "te":
      case "trailer":
      case "x-forwarded-proto":
      case "x-forwarded-host":
      case "x-forwarded-port":
        // Hop-by-hop, or set by this proxy: a client may not choose them.
        break;
      default:
        lines += `${line}\r\n`;
    }
  }

  if (chunked && contentLength !== -1) throw new HeadError(400, "both Content-Length and Transfer-Encoding were sent");
  const http10 = version === "HTTP/1.0";
  if (!hostSeen && !http10) throw new HeadError(400, "an HTTP/1.1 request needs a Host header");
  const upgrade = upgradeHeader !== "" && connectionTokens.includes("upgrade");
  if (upgrade) lines += `Upgrade: ${upgradeHeader}\r\nConnection: Upgrade\r\n`;
  const extraTokens = connectionTokens.filter((token) => token !== "" && !STANDARD_CONNECTION_TOKENS.has(token));
  if (extraTokens.length > 0) lines = withoutHeaders(lines, new Set(extraTokens));
  const keepAlive = http10 ? connectionTokens.includes("keep-alive") : !connectionTokens.includes("close");
  return {
    method,
    target,
    host: hostOf(authority),
    authority,
    http10,
    contentLength,
    chunked,
    keepAlive,
    upgrade,
    websocket:
      upgrade &&
      upgradeHeader
        .toLowerCase()
        .split(",")
        .some((protocol) => protocol.trim() === "websocket"),
    forwardedLines: lines,
    forwardedFor,
    releaseCookie: releaseFromCookies(cookies),
  };
}

// Headers named in Connection are hop-by-hop too (RFC 9110 7.6.1). Rare, so
// handled by a second pass instead of slowing down every request.
function withoutHeaders(lines: string, names: Set<string>): string {
  return lines
    .split("\r\n")
    .filter((line) => line !== "" && !names.has(line.slice(0, line.indexOf(":")).toLowerCase()))
    .map((line) => `${line}\r\n`)
    .join("");
}

/** The routing host of an authority: lowercase, port and trailing dot removed, IPv6 brackets kept. */
export function hostOf(authority: string): string {
  let host = authority;
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    host = close < 0 ? host : host.slice(0, close + 1);
  } else {
    const colon = host.indexOf(":");
    if (colon >= 0) host = host.slice(0, colon);
  }
  host = host.toLowerCase();
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** The head to send upstream: the request as received plus the X-Forwarded-* headers. */
export function upstreamRequestHead(head: RequestHead, clientAddress: string, scheme: string, port: number): string {
  const forwardedFor = head.forwardedFor === undefined ? clientAddress : `${head.forwardedFor}, ${clientAddress}`;
  return (
    `${head.method} ${head.target} ${head.http10 ? "HTTP/1.0" : "HTTP/1.1"}\r\n` +
    head.forwardedLines +
    `X-Forwarded-For: ${forwardedFor}\r\nX-Forwarded-Proto: ${scheme}\r\nX-Forwarded-Host: ${head.authority}\r\nX-Forwarded-Port: ${port}\r\n\r\n`
  );
}

/** Parses a response head (the bytes before the blank line, as latin1). */
export function parseResponseHead(text: string): ResponseHead {
  if (!text.startsWith("HTTP/1.")) throw new HeadError(502, "the upstream did not answer HTTP/1.x");
  const status = Number(text.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new HeadError(502, "malformed upstream status line");
  let reusable = text.charCodeAt(7) === 49; // HTTP/1.1 keeps the connection open by default
  let contentLength = -1;
  let chunked = false;
  let position = text.indexOf("\r\n");
  while (position >= 0 && position < text.length) {
    const start = position + 2;
    let next = text.indexOf("\r\n", start);
    if (next < 0) next = text.length;
    const colon = text.indexOf(":", start);
    if (colon > start && colon < next) {
      const nameLength = colon - start;
      if (nameLength === 14 || nameLength === 17 || nameLength === 10) {
        const name = text.slice(start, colon).toLowerCase();
        const value = text
          .slice(colon + 1, next)
          .trim()
          .toLowerCase();
        if (name === "content-length") {
          if (!/^[0-9]{1,15}$/.test(value)) throw new HeadError(502, "invalid upstream Content-Length");
          contentLength = Number(value);
        } else if (name === "transfer-encoding") {
          chunked = value.endsWith("chunked");
        } else if (name === "connection") {
          if (value.includes("close")) reusable = false;
          else if (value.includes("keep-alive")) reusable = true;
        }
      }
    }
    position = next;
  }
  return { status, contentLength: chunked ? -1 : contentLength, chunked, reusable };
}
