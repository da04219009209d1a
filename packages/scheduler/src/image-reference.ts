/** A container image reference, split as the distribution (Docker/OCI) reference grammar does. */
export interface ImageReference {
  /** The name as written, without tag or digest (`nginx`, `ghcr.io/acme/shop`): what a pinned reference keeps. */
  name: string;
  /** The registry's host[:port] to ask (`registry-1.docker.io` for Docker Hub). */
  registry: string;
  /** The repository path in that registry (`library/nginx` for Docker Hub's official images). */
  repository: string;
  /** `latest` when neither a tag nor a digest is given. */
  tag: string;
  /** `sha256:<hex>` when the reference is already pinned. */
  digest: string | undefined;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
/** The only digest algorithm berth pins to: what every registry and kubelet accept. */
export const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

const DOCKER_HUB = "registry-1.docker.io";

/**
 * Parses `[registry/]path[:tag][@sha256:…]`; the first component is a
 * registry when it holds a `.` or a `:` or is `localhost`, otherwise the
 * image is on Docker Hub (where one-component names live under `library/`).
 * Returns why the reference is malformed instead of throwing.
 */
export function parseImageReference(reference: string): ImageReference | string {
  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!SHA256_DIGEST.test(digest)) return `the digest "${digest}" is not sha256:<64 lower-case hex digits>`;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return `the tag "${tag}" is not a valid tag`;
  }
  const components = rest.split("/");
  const first = components[0]!;
  const hasDomain = components.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
  const domain = hasDomain ? first : undefined;
  const path = hasDomain ? components.slice(1) : components;
  if (domain !== undefined && !DOMAIN.test(domain)) return `"${domain}" is not a registry host`;
  if (path.length === 0 || path.some((component) => !PATH_COMPONENT.test(component))) {
    return `"${rest}" is not a repository name (lower-case letters, digits and separators)`;
  }
  const dockerHub = domain === undefined || domain === "docker.io" || domain === "index.docker.io";
  return {
    name: rest,
    registry: dockerHub ? DOCKER_HUB : domain!,
    repository: dockerHub && path.length === 1 ? `library/${path[0]}` : path.join("/"),
    tag: tag ?? "latest",
    digest,
  };
}

/** `name@sha256:…`: the reference that runs exactly these bytes wherever it is pulled. */
export function pinnedImage(reference: ImageReference, digest: string): string {
  return `${reference.name}@${digest}`;
}
