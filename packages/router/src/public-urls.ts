/** What decides the URL a hostname is reached at. */
export interface PublicUrlOptions {
  /** False for the Ingress engine: its controller serves every hostname over HTTPS on the default port. */
  local: boolean;
  /** The public ports of the local proxy. */
  httpPort: number;
  httpsPort: number;
  /** Whether a TLS handshake for the hostname gets a certificate issued for it; absent when the proxy serves no TLS. */
  servesTls?: (hostname: string) => boolean;
}

/**
 * The URL of each hostname as the local proxy serves it: HTTPS only once the
 * hostname has its own certificate. Before that (issuance pending or failed,
 * a custom domain the platform CA may not certify) a browser would get the
 * fallback certificate or none, while plain HTTP serves the app.
 */
export function publicUrlFor(options: PublicUrlOptions): (hostname: string) => string {
  return (hostname) => {
    if (!options.local) return `https://${hostname}`;
    const secure = options.servesTls?.(hostname) ?? false;
    const port = secure ? options.httpsPort : options.httpPort;
    return `${secure ? "https" : "http"}://${hostname}${port === (secure ? 443 : 80) ? "" : `:${port}`}`;
  };
}
