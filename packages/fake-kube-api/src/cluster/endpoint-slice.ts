import { field, isJsonObject, type JsonObject } from "../patch.js";
import { type Cluster, type Controller, controllerOf, keyOf, labelsOf, metaOf, ownerReferenceTo, ownKey, randomSuffix, splitKey } from "./runtime.js";
import { isPodReady } from "./replica-set.js";

const managedBy = "endpointslice-controller.k8s.io";

/** A Service port's target on one pod: a number, or a named container port looked up in the pod. */
function targetPort(servicePort: JsonObject, pod: JsonObject): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === "number") return target;
  const containers = Array.isArray(field(pod, "spec", "containers")) ? (field(pod, "spec", "containers") as JsonObject[]) : [];
  for (const container of containers) {
    const ports = Array.isArray(container.ports) ? (container.ports as JsonObject[]) : [];
    const named = ports.find((port) => port.name === target && (port.protocol ?? "TCP") === (servicePort.protocol ?? "TCP"));
    if (named) return named.containerPort as number;
  }
  return undefined;
}

/**
 * The EndpointSlice controller: for every Service with a selector, one
 * IPv4 slice listing the selected pods that have an IP, with the
 * ready/serving/terminating conditions, node and zone a real slice carries.
 * Pods whose named target port resolves differently go in separate slices.
 */
export function endpointSliceController(cluster: Cluster): Controller {
  const { service: serviceKind, pod: podKind, endpointSlice: sliceKind, node: nodeKind } = cluster.kinds;
  return {
    name: "endpointslice",
    triggers: [
      { kind: serviceKind, keys: ownKey },
      // A pod change can affect any Service in its namespace.
      { kind: podKind, keys: (event) => cluster.list(serviceKind, String(metaOf(event.object).namespace)).map(keyOf) },
    ],
    reconcile(key) {
      const [namespace, name] = splitKey(key);
      const service = cluster.get(serviceKind, namespace, name);
      if (service === undefined) return undefined;
      const selector = field(service, "spec", "selector");
      if (!isJsonObject(selector) || Object.keys(selector).length === 0) return undefined;
      const servicePorts = Array.isArray(field(service, "spec", "ports")) ? (field(service, "spec", "ports") as JsonObject[]) : [];
      const zones = new Map(cluster.list(nodeKind).map((node) => [metaOf(node).name, labelsOf(node)["topology.kubernetes.io/zone"]]));
      const pods = cluster.list(podKind, namespace).filter((pod) => {
        const phase = field(pod, "status", "phase");
        return (
          typeof field(pod, "status", "podIP") === "string" &&
          phase !== "Succeeded" &&
          phase !== "Failed" &&
          Object.entries(selector).every(([label, value]) => labelsOf(pod)[label] === value)
        );
      });
      const groups = new Map<string, { ports: JsonObject[]; endpoints: JsonObject[] }>();
      for (const pod of pods) {
        const ports = servicePorts.flatMap((port) => {
          const resolved = targetPort(port, pod);
          return resolved === undefined
            ? []
            : [{ name: port.name ?? "", port: resolved, protocol: port.protocol ?? "TCP", ...(port.appProtocol ? { appProtocol: port.appProtocol } : {}) }];
        });
        const groupKey = JSON.stringify(ports);
        if (!groups.has(groupKey)) groups.set(groupKey, { ports, endpoints: [] });
        const terminating = metaOf(pod).deletionTimestamp !== undefined;
        const nodeName = field(pod, "spec", "nodeName");
        const zone = zones.get(nodeName);
        groups.get(groupKey)!.endpoints.push({
          addresses: [field(pod, "status", "podIP")],
          conditions: { ready: isPodReady(pod) && !terminating, serving: isPodReady(pod), terminating },
          ...(typeof nodeName === "string" ? { nodeName } : {}),
          ...(zone ? { zone } : {}),
          targetRef: { kind: "Pod", namespace, name: metaOf(pod).name, uid: metaOf(pod).uid },
        });
      }
      if (groups.size === 0) groups.set("[]", { ports: servicePorts.length > 0 ? [] : [], endpoints: [] });
      const existing = cluster
        .list(sliceKind, namespace)
        .filter((slice) => controllerOf(slice)?.uid === metaOf(service).uid && labelsOf(slice)["endpointslice.kubernetes.io/managed-by"] === managedBy);
      const wanted = [...groups.values()];
      wanted.forEach((group, index) => {
        const slice = existing[index];
        const body = {
          addressType: "IPv4",
          ports: group.ports,
          endpoints: group.endpoints.sort((a, b) => String(field(a, "targetRef", "name")).localeCompare(String(field(b, "targetRef", "name")))),
        };
        if (slice === undefined) {
          cluster.create(
            sliceKind,
            {
              apiVersion: "discovery.k8s.io/v1",
              kind: "EndpointSlice",
              metadata: {
                name: `${name}-${randomSuffix()}`,
                namespace,
                labels: { "kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": managedBy },
                ownerReferences: [ownerReferenceTo(serviceKind, service)],
              },
              ...body,
            },
            "endpointslice-controller",
          );
        } else {
          cluster.update(sliceKind, { ...slice, ...body }, "endpointslice-controller");
        }
      });
      for (const extra of existing.slice(wanted.length)) cluster.remove(sliceKind, namespace, String(metaOf(extra).name));
      return undefined;
    },
  };
}
