/** A response the proxy answers itself: an error page, a redirect or an ACME challenge. */
export interface LocalResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const REASONS: Record<number, string> = {
  200: "OK",
  308: "Permanent Redirect",
  400: "Bad Request",
  404: "Not Found",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** The reason phrase of a status the proxy answers with. */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Error";
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function page(status: number, title: string, detail: string): LocalResponse {
  const body =
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body style="font-family:sans-serif;max-width:40em;margin:4em auto">` +
    `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p><hr><small>berth router</small></body></html>\n`;
  return { status, headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }, body };
}

/** 404 for a hostname no route or custom domain serves. */
export function unknownHostPage(host: string): LocalResponse {
  return page(404, "No app here", `No app is served at ${host || "this address"}. Check the hostname, or attach it as a custom domain.`);
}

/** 503 when a process had no healthy replica within the wait. */
export function noReplicaPage(app: string, processType: string, waitedMs: number): LocalResponse {
  return {
    ...page(
      503,
      "No healthy replica",
      `The ${processType} process of ${app} has no healthy replica (waited ${Math.round(waitedMs / 1000)} s). Try again shortly.`,
    ),
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "retry-after": "5" },
  };
}

/** 502 when replicas were there but none answered. */
export function badGatewayPage(app: string, processType: string): LocalResponse {
  return page(502, "Bad gateway", `The ${processType} process of ${app} did not answer the request.`);
}

/** An error page for a request the proxy cannot read. */
export function badRequestPage(status: number, detail: string): LocalResponse {
  return page(status, reasonPhrase(status), detail);
}

/** 308 to the same URL over HTTPS. */
export function httpsRedirect(authorityHost: string, target: string, httpsPort: number): LocalResponse {
  const port = httpsPort === 443 ? "" : `:${httpsPort}`;
  const location = `https://${authorityHost}${port}${target.startsWith("/") ? target : "/"}`;
  return { status: 308, headers: { location, "content-type": "text/plain; charset=utf-8" }, body: `Redirecting to ${location}\n` };
}

/** The key authorization of an ACME http-01 challenge. */
export function challengeResponse(keyAuthorization: string | undefined): LocalResponse {
  if (keyAuthorization === undefined) return { status: 404, headers: { "content-type": "text/plain" }, body: "unknown challenge\n" };
  return { status: 200, headers: { "content-type": "application/octet-stream" }, body: keyAuthorization };
}

/** The path prefix of ACME http-01 challenges, always answered over plain HTTP. */
export const ACME_CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
