import { apiVersionOf, type KindRegistry, type ResourceKind } from "./registry.js";
import { resourceNotFound } from "./status.js";

/** What `/version` answers: a plausible recent release, marked as fake. */
const serverVersion = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.0-fake",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2024-08-13T00:00:00Z",
  goVersion: "go1.22.5",
  compiler: "gc",
  platform: "linux/amd64",
};

/**
 * The answer to a discovery path (segments of `/version`, `/api`, `/api/v1`,
 * `/apis`, `/apis/<group>`, `/apis/<group>/<version>`, or a health check),
 * built from the kinds in `registry`. Throws NotFound for anything else.
 */
export function discoveryDocument(registry: KindRegistry, segments: readonly string[], serverAddress: string): unknown {
  const [root, group, version] = segments;
  if (segments.length === 1 && root === "version") return serverVersion;
  if (segments.length === 1 && (root === "healthz" || root === "livez" || root === "readyz")) return "ok";
  if (segments.length === 1 && root === "api") {
    return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
  }
  const groups = new Map<string, string[]>();
  for (const kind of registry.all()) {
    if (kind.group === "") continue;
    const versions = groups.get(kind.group) ?? [];
    if (!versions.includes(kind.version)) versions.push(kind.version);
    groups.set(kind.group, versions);
  }
  const apiGroup = (name: string, versions: string[]) => ({
    name,
    versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
  });
  if (segments.length === 1 && root === "apis")
    return { kind: "APIGroupList", apiVersion: "v1", groups: [...groups].map(([name, versions]) => apiGroup(name, versions)) };
  if (segments.length === 2 && root === "apis" && groups.has(group!)) return { kind: "APIGroup", apiVersion: "v1", ...apiGroup(group!, groups.get(group!)!) };
  const [g, v] =
    root === "api" && segments.length === 2 ? ["", group!] : root === "apis" && segments.length === 3 ? [group!, version!] : [undefined, undefined];
  const kinds = registry.all().filter((kind) => kind.group === g && kind.version === v);
  if (kinds.length === 0) throw resourceNotFound();
  const subresource = (kind: ResourceKind, name: string, verbs: string[], extra: object = {}) => ({
    name: `${kind.plural}/${name}`,
    singularName: "",
    namespaced: kind.namespaced,
    kind: kind.kind,
    verbs,
    ...extra,
  });
  const resources = kinds.flatMap((kind) => [
    {
      name: kind.plural,
      singularName: kind.kind.toLowerCase(),
      namespaced: kind.namespaced,
      kind: kind.kind,
      verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
      ...(kind.shortNames ? { shortNames: kind.shortNames } : {}),
      ...(kind.categories ? { categories: kind.categories } : {}),
    },
    ...(kind.statusSubresource ? [subresource(kind, "status", ["get", "patch", "update"])] : []),
    // The scale client finds the Scale kind's group/version here, as on a real server.
    ...(kind.scaleSubresource ? [subresource(kind, "scale", ["get", "patch", "update"], { group: "autoscaling", version: "v1", kind: "Scale" })] : []),
    ...(kind.group === "" && kind.kind === "Pod"
      ? [subresource(kind, "log", ["get"]), subresource(kind, "exec", ["create", "get"], { group: "", version: "v1", kind: "PodExecOptions" })]
      : []),
  ]);
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: apiVersionOf({ group: g!, version: v! }), resources };
}
