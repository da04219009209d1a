import test from "ava";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { parseImageReference, pinnedImage } from "../src/image-reference.js";
import { resolveImageDigest } from "../src/registry-digest.js";
import { startTestRegistry } from "./support/oci-registry.js";

const hex = "a".repeat(64);
const referenceCases: [string, string, object | RegExp][] = [
  ["a Docker Hub official image", "nginx", { name: "nginx", registry: "registry-1.docker.io", repository: "library/nginx", tag: "latest", digest: undefined }],
  ["a Docker Hub user image with a tag", "acme/shop:v1", { name: "acme/shop", registry: "registry-1.docker.io", repository: "acme/shop", tag: "v1" }],
  ["docker.io spelled out", "docker.io/nginx:1.27", { name: "docker.io/nginx", registry: "registry-1.docker.io", repository: "library/nginx", tag: "1.27" }],
  ["a registry with a port", "localhost:5000/shop:v2", { name: "localhost:5000/shop", registry: "localhost:5000", repository: "shop", tag: "v2" }],
  [
    "a pinned reference",
    `ghcr.io/acme/shop@sha256:${hex}`,
    { name: "ghcr.io/acme/shop", registry: "ghcr.io", repository: "acme/shop", digest: `sha256:${hex}` },
  ],
  ["a tag and a digest", `ghcr.io/acme/shop:v1@sha256:${hex}`, { name: "ghcr.io/acme/shop", tag: "v1", digest: `sha256:${hex}` }],
  ["upper case", "Acme/Shop", /not a repository name/],
  ["a short digest", "shop@sha256:abc", /not sha256:<64/],
  ["a bad tag", "shop:-v1", /not a valid tag/],
  ["an empty path", "ghcr.io/", /not a repository name/],
];
for (const [title, reference, expected] of referenceCases) {
  test(`image reference: ${title}`, (t) => {
    const parsed = parseImageReference(reference);
    if (expected instanceof RegExp) t.regex(parsed as string, expected);
    else t.like(parsed, expected);
  });
}

test("a pinned image keeps the name as written and drops the tag", (t) => {
  const parsed = parseImageReference("ghcr.io/acme/shop:v1");
  if (typeof parsed === "string") return t.fail(parsed);
  t.is(pinnedImage(parsed, `sha256:${hex}`), `ghcr.io/acme/shop@sha256:${hex}`);
});

/** Resolves `path` (repository:tag) at the registry at `host`, over plain HTTP. */
async function resolveAt(host: string, path: string) {
  const parsed = parseImageReference(`${host}/${path}`);
  if (typeof parsed === "string") throw new Error(parsed);
  return resolveImageDigest(parsed, { insecureHosts: [host], timeoutMs: 5000 });
}

test("a tag resolves to the Docker-Content-Digest the registry answers a manifest HEAD with, and follows the tag when it moves", async (t) => {
  const registry = await startTestRegistry();
  t.teardown(() => registry.close());
  const first = registry.push("acme/shop", "v1");
  t.deepEqual(await resolveAt(registry.host, "acme/shop:v1"), { state: "resolved", digest: first });
  t.deepEqual(
    registry.requests.map((request) => `${request.method} ${request.path}`),
    ["HEAD /v2/acme/shop/manifests/v1"],
    "one HEAD, no manifest download",
  );
  const second = registry.push("acme/shop", "v1");
  t.not(second, first);
  t.deepEqual(await resolveAt(registry.host, "acme/shop:v1"), { state: "resolved", digest: second });
});

test("a registry asking for a Bearer token gets an anonymous one from its realm, then answers", async (t) => {
  const registry = await startTestRegistry({ bearer: true });
  t.teardown(() => registry.close());
  const digest = registry.push("acme/shop", "v1");
  t.deepEqual(await resolveAt(registry.host, "acme/shop:v1"), {
    state: "resolved",
    digest,
  });
  t.deepEqual(
    registry.requests.map((request) => request.authorized),
    [false, true],
  );
});

test("without the header, the digest is the sha256 of the manifest bytes", async (t) => {
  const registry = await startTestRegistry({ omitDigestHeader: true });
  t.teardown(() => registry.close());
  const digest = registry.push("acme/shop", "v1");
  t.deepEqual(await resolveAt(registry.host, "acme/shop:v1"), {
    state: "resolved",
    digest,
  });
});

test("an unknown tag is not found; a registry nobody answers at is unavailable", async (t) => {
  const registry = await startTestRegistry();
  t.teardown(() => registry.close());
  const missing = await resolveAt(registry.host, "acme/shop:nope");
  t.is(missing.state, "not-found");
  // A port nothing listens on: taken and released again.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
  const unreachable = await resolveAt(host, "acme/shop:v1");
  t.is(unreachable.state, "unavailable");
  t.regex((unreachable as { message: string }).message, /could not reach the registry/);
});
