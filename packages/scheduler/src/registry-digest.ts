import { createHash } from "node:crypto";
import type { ImageReference } from "./image-reference.js";
import { SHA256_DIGEST } from "./image-reference.js";

/** Options of resolveImageDigest. */
export interface RegistryOptions {
  /** Registry hosts (host[:port]) reached over plain HTTP, as containerd's and Docker's insecure registries are; others over HTTPS. */
  insecureHosts: readonly string[];
  /** For the whole resolution (token, HEAD, maybe GET). */
  timeoutMs: number;
  /** The caller's cancellation. */
  signal?: AbortSignal;
}

/** What asking the registry for a tag's digest found. */
export type DigestResolution =
  | { state: "resolved"; digest: string }
  /** The registry answered that the repository or tag does not exist (404): the kubelet could not pull it either. */
  | { state: "not-found"; message: string }
  /** No answer worth trusting: unreachable, timed out, credentials only the nodes have, or a server error. */
  | { state: "unavailable"; message: string };

/** Every manifest type a tag can point at, index types first: the digest a kubelet pulls by is the one the registry serves for these. */
const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** The parameters of a `Bearer realm="…",service="…",scope="…"` challenge. */
function bearerChallenge(header: string | null): Record<string, string> | undefined {
  if (header === null || !/^bearer\s/i.test(header)) return undefined;
  const parameters: Record<string, string> = {};
  for (const match of header.slice(7).matchAll(/([a-zA-Z]+)="([^"]*)"/g)) parameters[match[1]!.toLowerCase()] = match[2]!;
  return parameters.realm ? parameters : undefined;
}

/** An anonymous pull token from the registry's token service (the distribution token protocol). */
async function anonymousToken(challenge: Record<string, string>, reference: ImageReference, signal: AbortSignal): Promise<string | undefined> {
  const url = new URL(challenge.realm!);
  if (challenge.service) url.searchParams.set("service", challenge.service);
  url.searchParams.set("scope", challenge.scope ?? `repository:${reference.repository}:pull`);
  const response = await fetch(url, { signal });
  if (!response.ok) return undefined;
  const body = (await response.json()) as { token?: string; access_token?: string };
  return body.token ?? body.access_token;
}

/**
 * Asks the image's registry which manifest its tag points at now: `HEAD
 * /v2/<repository>/manifests/<tag>` and the `Docker-Content-Digest`
 * header (after an anonymous Bearer token when the registry asks for one;
 * when the header is missing, the digest of the manifest bytes a GET
 * returns, which is how the header is defined).
 */
export async function resolveImageDigest(reference: ImageReference, options: RegistryOptions): Promise<DigestResolution> {
  const scheme = options.insecureHosts.includes(reference.registry) ? "http" : "https";
  const url = `${scheme}://${reference.registry}/v2/${reference.repository}/manifests/${encodeURIComponent(reference.tag)}`;
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])]);
  const where = `${reference.registry}/${reference.repository}:${reference.tag}`;
  try {
    const headers: Record<string, string> = { accept: MANIFEST_TYPES };
    let response = await fetch(url, { method: "HEAD", headers, signal });
    if (response.status === 401) {
      const challenge = bearerChallenge(response.headers.get("www-authenticate"));
      const token = challenge && (await anonymousToken(challenge, reference, signal));
      if (token) {
        headers.authorization = `Bearer ${token}`;
        response = await fetch(url, { method: "HEAD", headers, signal });
      }
    }
    if (response.status === 404) return { state: "not-found", message: `the registry has no image ${where}` };
    if (!response.ok) return { state: "unavailable", message: `the registry answered ${response.status} for ${where}` };
    const header = response.headers.get("docker-content-digest");
    if (header !== null && SHA256_DIGEST.test(header)) return { state: "resolved", digest: header };
    const manifest = await fetch(url, { headers, signal });
    if (!manifest.ok) return { state: "unavailable", message: `the registry answered ${manifest.status} for ${where}` };
    return {
      state: "resolved",
      digest: `sha256:${createHash("sha256")
        .update(Buffer.from(await manifest.arrayBuffer()))
        .digest("hex")}`,
    };
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    return { state: "unavailable", message: `could not reach the registry for ${where}: ${error instanceof Error ? error.message : String(error)}` };
  }
}
