import { field, isJsonObject, type JsonObject } from "./patch.js";
import { apiVersionOf, type ResourceKind } from "./registry.js";

/**
 * Server-side printing: the `meta.k8s.io/v1` Table kube-apiserver answers
 * when a client (kubectl get) asks for `as=Table`, with the columns of the
 * built-in printers for the kinds berth uses.
 */
type Cell = string | number;
interface Column {
  name: string;
  type: "string" | "integer" | "date";
  /** 0: always shown; 1: shown with `-o wide`. */
  priority?: number;
  cell(object: JsonObject): Cell;
}

const list = (value: unknown): JsonObject[] => (Array.isArray(value) ? value.filter(isJsonObject) : []);
const count = (value: unknown): number => (typeof value === "number" ? value : 0);
const text = (value: unknown, empty = "<none>"): string => (typeof value === "string" && value !== "" ? value : empty);

/** kubectl's short human duration: 45s, 3m12s, 5h, 2d3h, 40d. */
export function humanDuration(milliseconds: number): string {
  const seconds = Math.max(0, Math.floor(milliseconds / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  return days < 8 && hours % 24 !== 0 ? `${days}d${hours % 24}h` : `${days}d`;
}

const age = (object: JsonObject): string => {
  const created = field(object, "metadata", "creationTimestamp");
  return typeof created === "string" ? humanDuration(Date.now() - Date.parse(created)) : "<unknown>";
};

const nameColumn: Column = { name: "Name", type: "string", cell: (object) => String(field(object, "metadata", "name")) };
const ageColumn: Column = { name: "Age", type: "string", cell: age };

/** The STATUS kubectl shows for a pod: a waiting/terminated reason beats the phase; Terminating beats all. */
export function podStatusText(pod: JsonObject): string {
  let reason = text(field(pod, "status", "reason"), text(field(pod, "status", "phase"), "Pending"));
  for (const status of list(field(pod, "status", "containerStatuses"))) {
    const waiting = text(field(status, "state", "waiting", "reason"), "");
    const terminated = field(status, "state", "terminated");
    if (waiting !== "") reason = waiting;
    else if (isJsonObject(terminated)) reason = text(terminated.reason, `ExitCode:${count(terminated.exitCode)}`);
  }
  return field(pod, "metadata", "deletionTimestamp") !== undefined ? "Terminating" : reason;
}

function ports(object: JsonObject): string {
  const entries = list(field(object, "spec", "ports")).map(
    (port) => `${String(port.port)}${port.nodePort ? `:${String(port.nodePort)}` : ""}/${text(port.protocol, "TCP")}`,
  );
  return entries.length > 0 ? entries.join(",") : "<none>";
}

function selectorText(selector: unknown): string {
  const labels = field(selector, "matchLabels");
  const parts = isJsonObject(labels) ? Object.entries(labels).map(([key, value]) => `${key}=${String(value)}`) : [];
  return parts.length > 0 ? parts.join(",") : "<none>";
}

function condition(object: JsonObject, type: string): string | undefined {
  return list(field(object, "status", "conditions")).find((entry) => entry.type === type)?.status as string | undefined;
}

const columnsByKind: Record<string, Column[]> = {
  "v1/Pod": [
    nameColumn,
    {
      name: "Ready",
      type: "string",
      cell: (pod) => {
        const statuses = list(field(pod, "status", "containerStatuses"));
        return `${statuses.filter((status) => status.ready === true).length}/${list(field(pod, "spec", "containers")).length}`;
      },
    },
    { name: "Status", type: "string", cell: podStatusText },
    {
      name: "Restarts",
      type: "string",
      cell: (pod) => String(list(field(pod, "status", "containerStatuses")).reduce((sum, status) => sum + count(status.restartCount), 0)),
    },
    ageColumn,
    { name: "IP", type: "string", priority: 1, cell: (pod) => text(field(pod, "status", "podIP")) },
    { name: "Node", type: "string", priority: 1, cell: (pod) => text(field(pod, "spec", "nodeName")) },
  ],
  "apps/v1/Deployment": [
    nameColumn,
    { name: "Ready", type: "string", cell: (d) => `${count(field(d, "status", "readyReplicas"))}/${count(field(d, "spec", "replicas") ?? 1)}` },
    { name: "Up-to-date", type: "integer", cell: (d) => count(field(d, "status", "updatedReplicas")) },
    { name: "Available", type: "integer", cell: (d) => count(field(d, "status", "availableReplicas")) },
    ageColumn,
    {
      name: "Containers",
      type: "string",
      priority: 1,
      cell: (d) =>
        list(field(d, "spec", "template", "spec", "containers"))
          .map((c) => String(c.name))
          .join(","),
    },
    {
      name: "Images",
      type: "string",
      priority: 1,
      cell: (d) =>
        list(field(d, "spec", "template", "spec", "containers"))
          .map((c) => String(c.image))
          .join(","),
    },
    { name: "Selector", type: "string", priority: 1, cell: (d) => selectorText(field(d, "spec", "selector")) },
  ],
  "apps/v1/ReplicaSet": [
    nameColumn,
    { name: "Desired", type: "integer", cell: (rs) => count(field(rs, "spec", "replicas") ?? 1) },
    { name: "Current", type: "integer", cell: (rs) => count(field(rs, "status", "replicas")) },
    { name: "Ready", type: "integer", cell: (rs) => count(field(rs, "status", "readyReplicas")) },
    ageColumn,
  ],
  "apps/v1/StatefulSet": [
    nameColumn,
    { name: "Ready", type: "string", cell: (s) => `${count(field(s, "status", "readyReplicas"))}/${count(field(s, "spec", "replicas") ?? 1)}` },
    ageColumn,
  ],
  "v1/Service": [
    nameColumn,
    { name: "Type", type: "string", cell: (s) => text(field(s, "spec", "type"), "ClusterIP") },
    { name: "Cluster-IP", type: "string", cell: (s) => text(field(s, "spec", "clusterIP")) },
    {
      name: "External-IP",
      type: "string",
      cell: (s) =>
        list(field(s, "status", "loadBalancer", "ingress"))
          .map((entry) => String(entry.ip ?? entry.hostname))
          .join(",") || "<none>",
    },
    { name: "Port(s)", type: "string", cell: ports },
    ageColumn,
    { name: "Selector", type: "string", priority: 1, cell: (s) => selectorText({ matchLabels: field(s, "spec", "selector") }) },
  ],
  "batch/v1/Job": [
    nameColumn,
    {
      name: "Status",
      type: "string",
      cell: (job) =>
        condition(job, "Failed") === "True"
          ? "Failed"
          : condition(job, "Complete") === "True"
            ? "Complete"
            : field(job, "metadata", "deletionTimestamp")
              ? "Terminating"
              : "Running",
    },
    { name: "Completions", type: "string", cell: (job) => `${count(field(job, "status", "succeeded"))}/${count(field(job, "spec", "completions") ?? 1)}` },
    {
      name: "Duration",
      type: "string",
      cell: (job) => {
        const start = field(job, "status", "startTime");
        const end = field(job, "status", "completionTime");
        return typeof start === "string" ? humanDuration((typeof end === "string" ? Date.parse(end) : Date.now()) - Date.parse(start)) : "";
      },
    },
    ageColumn,
  ],
  "v1/Namespace": [nameColumn, { name: "Status", type: "string", cell: (ns) => text(field(ns, "status", "phase"), "Active") }, ageColumn],
  "v1/Node": [
    nameColumn,
    { name: "Status", type: "string", cell: (node) => (condition(node, "Ready") === "True" ? "Ready" : "NotReady") },
    { name: "Roles", type: "string", cell: () => "<none>" },
    ageColumn,
    { name: "Version", type: "string", cell: (node) => text(field(node, "status", "nodeInfo", "kubeletVersion"), "") },
  ],
  "v1/Secret": [
    nameColumn,
    { name: "Type", type: "string", cell: (s) => text(s.type, "Opaque") },
    { name: "Data", type: "integer", cell: (s) => Object.keys(isJsonObject(s.data) ? s.data : {}).length },
    ageColumn,
  ],
  "v1/ConfigMap": [
    nameColumn,
    {
      name: "Data",
      type: "integer",
      cell: (c) => Object.keys(isJsonObject(c.data) ? c.data : {}).length + Object.keys(isJsonObject(c.binaryData) ? c.binaryData : {}).length,
    },
    ageColumn,
  ],
  "discovery.k8s.io/v1/EndpointSlice": [
    nameColumn,
    { name: "AddressType", type: "string", cell: (s) => text(s.addressType) },
    {
      name: "Ports",
      type: "string",
      cell: (s) =>
        list(s.ports)
          .map((port) => String(port.port))
          .join(",") || "<unset>",
    },
    {
      name: "Endpoints",
      type: "string",
      cell: (s) =>
        list(s.endpoints)
          .flatMap((endpoint) => (Array.isArray(endpoint.addresses) ? endpoint.addresses : []))
          .join(",") || "<unset>",
    },
    ageColumn,
  ],
  "networking.k8s.io/v1/Ingress": [
    nameColumn,
    { name: "Class", type: "string", cell: (i) => text(field(i, "spec", "ingressClassName")) },
    {
      name: "Hosts",
      type: "string",
      cell: (i) =>
        list(field(i, "spec", "rules"))
          .map((rule) => text(rule.host, "*"))
          .join(",") || "*",
    },
    {
      name: "Address",
      type: "string",
      cell: (i) =>
        list(field(i, "status", "loadBalancer", "ingress"))
          .map((entry) => String(entry.ip ?? entry.hostname))
          .join(","),
    },
    { name: "Ports", type: "string", cell: (i) => (list(field(i, "spec", "tls")).length > 0 ? "80, 443" : "80") },
    ageColumn,
  ],
  "networking.k8s.io/v1/NetworkPolicy": [
    nameColumn,
    { name: "Pod-Selector", type: "string", cell: (n) => selectorText(field(n, "spec", "podSelector")) },
    ageColumn,
  ],
  "autoscaling/v2/HorizontalPodAutoscaler": [
    nameColumn,
    {
      name: "Reference",
      type: "string",
      cell: (h) => `${String(field(h, "spec", "scaleTargetRef", "kind"))}/${String(field(h, "spec", "scaleTargetRef", "name"))}`,
    },
    { name: "Targets", type: "string", cell: (h) => (list(field(h, "status", "currentMetrics")).length > 0 ? "<set>" : "<unknown>") },
    { name: "MinPods", type: "integer", cell: (h) => count(field(h, "spec", "minReplicas") ?? 1) },
    { name: "MaxPods", type: "integer", cell: (h) => count(field(h, "spec", "maxReplicas")) },
    { name: "Replicas", type: "integer", cell: (h) => count(field(h, "status", "currentReplicas")) },
    ageColumn,
  ],
  "policy/v1/PodDisruptionBudget": [
    nameColumn,
    { name: "Min Available", type: "string", cell: (p) => String(field(p, "spec", "minAvailable") ?? "N/A") },
    { name: "Max Unavailable", type: "string", cell: (p) => String(field(p, "spec", "maxUnavailable") ?? "N/A") },
    { name: "Allowed Disruptions", type: "integer", cell: (p) => count(field(p, "status", "disruptionsAllowed")) },
    ageColumn,
  ],
  "cert-manager.io/v1/Certificate": [
    nameColumn,
    { name: "Ready", type: "string", cell: (c) => condition(c, "Ready") ?? "" },
    { name: "Secret", type: "string", cell: (c) => text(field(c, "spec", "secretName"), "") },
    ageColumn,
  ],
};

function columnsOf(kind: ResourceKind): Column[] {
  return columnsByKind[`${apiVersionOf(kind)}/${kind.kind}`] ?? [nameColumn, ageColumn];
}

/** How much of each object a Table row carries (`includeObject`). */
export type IncludeObject = "None" | "Metadata" | "Object";

/** Whether an Accept header asks for a Table (kubectl's `as=Table;g=meta.k8s.io;v=v1`). */
export function wantsTable(accept: string | undefined): boolean {
  return (accept ?? "").split(",").some((type) => {
    const parameters = new Map(
      type
        .split(";")
        .slice(1)
        .map((part) => part.trim().split("=") as [string, string]),
    );
    return parameters.get("as") === "Table" && parameters.get("g") === "meta.k8s.io" && parameters.get("v") === "v1";
  });
}

/** A Table of `objects` of `kind`, with columnDefinitions unless `withColumns` is false (later watch events). */
export function tableOf(kind: ResourceKind, objects: readonly JsonObject[], include: IncludeObject, resourceVersion: string, withColumns = true): JsonObject {
  const columns = columnsOf(kind);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    ...(withColumns
      ? {
          columnDefinitions: columns.map((column) => ({
            name: column.name,
            type: column.type,
            format: column === nameColumn ? "name" : "",
            description: "",
            priority: column.priority ?? 0,
          })),
        }
      : { columnDefinitions: null }),
    rows: objects.map((object) => ({
      cells: columns.map((column) => column.cell(object)),
      ...(include === "None"
        ? {}
        : {
            object:
              include === "Object"
                ? { apiVersion: apiVersionOf(kind), kind: kind.kind, ...object }
                : { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: object.metadata },
          }),
    })),
  };
}
