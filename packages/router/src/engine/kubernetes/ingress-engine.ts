import { KubernetesObjectApi } from "@kubernetes/client-node";
import type { KubeConfig, KubernetesObject, V1Service } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { LABEL, applyObjectSet, labelSelector, processObjectName, routingClassOf, standardLabels, teamNamespace } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { Logger } from "@berth/kit";
import type { RoutingEngine, WebProcessRoutes } from "../routing-engine.js";
import { followCertificateStatus } from "./certificate-status.js";
import type { CertificateStatusOptions } from "./certificate-status.js";

/*
 * Why Ingress rather than Gateway API HTTPRoute: networking.k8s.io/v1 Ingress
 * is served by every cluster and every ingress controller without CRDs, it is
 * validated by kubernetes-models 4.5.1 (the schemas berth checks its objects
 * against), and cert-manager's ingress-shim turns one annotation into a
 * Certificate per Ingress. Gateway API would need the Gateway CRDs installed,
 * a Gateway listener per hostname for cert-manager's gateway-shim, and offers
 * no schema in the validated set.
 */

/** Options of createIngressEngine. */
export interface IngressEngineOptions {
  kubeConfig: KubeConfig;
  /** The base of the teams' namespaces: a team's Services live, and its Ingresses go, in `<namespace>-<team>` (teamNamespace). */
  namespace: string;
  /** spec.ingressClassName of every Ingress. */
  ingressClass: string;
  /** The cert-manager ClusterIssuer named in each Ingress's annotation. */
  clusterIssuer: string;
  /** The port of each web process's Service. */
  webServicePort: number;
  /** Where each routed hostname's certificate state is kept, read back from cert-manager's Certificates. */
  store: CertificateStatusOptions["store"];
  logger: Logger;
}

/** The processes routed through Ingresses: web ones, and rtc ones by their per-replica hostnames. */
const ROUTED_CLASSES = new Set([RoutingClass.WEB, RoutingClass.RTC]);

/** The field manager of berth's server-side applies of routing objects. */
export const FIELD_MANAGER = "berth-router";

/**
 * The TLS Secret of one hostname: cert-manager's ingress-shim makes one
 * Certificate per secretName, so a custom domain whose DNS is not set up
 * fails alone and never holds back the platform hostname's certificate.
 */
export function tlsSecretName(objectName: string, hostname: string): string {
  return `${objectName}-${createHash("sha256").update(hostname).digest("hex").slice(0, 10)}-tls`;
}

/** The label a StatefulSet controller puts on each of its pods, with the pod's name. */
const STATEFULSET_POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";

/**
 * The Service reaching one replica of an rtc process alone: named, and
 * selecting by `statefulset.kubernetes.io/pod-name`, after the
 * StatefulSet's pod of that replica (`<set>-<ordinal>`, replica 01 is
 * ordinal 0), as the Ingress's backend of the replica's hostname.
 */
export function replicaServiceName(objectName: string, replica: number): string {
  return `${objectName}-${replica - 1}`;
}

/** The per-replica Services of an rtc process's hostnames: HTTP(S) and WebSocket go to the pod's `rtc` container port (the scheduler's name for it). */
export function replicaServicesFor(routes: WebProcessRoutes, options: Pick<IngressEngineOptions, "namespace" | "webServicePort">): V1Service[] {
  const set = processObjectName(routes.app, routes.processType);
  return (routes.replicaHostnames ?? []).map(({ replica }) => {
    const name = replicaServiceName(set, replica);
    return {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name,
        namespace: teamNamespace(options.namespace, routes.team),
        labels: standardLabels({ app: routes.app, component: routes.processType, team: routes.team, managedBy: FIELD_MANAGER, instance: name }),
      },
      spec: {
        type: "ClusterIP",
        selector: { [STATEFULSET_POD_NAME_LABEL]: name },
        ports: [{ name: "rtc", port: options.webServicePort, targetPort: "rtc", protocol: "TCP" }],
      },
    };
  });
}

/**
 * The Ingress serving one process: one rule per hostname, TLS from
 * cert-manager with a certificate per hostname. A web process's hostnames
 * go to its Service; each of an rtc process's to its replica's own.
 */
export function ingressFor(
  routes: WebProcessRoutes,
  options: Pick<IngressEngineOptions, "namespace" | "ingressClass" | "clusterIssuer" | "webServicePort">,
): KubernetesObject & Record<string, unknown> {
  const name = processObjectName(routes.app, routes.processType);
  const labels = standardLabels({ app: routes.app, component: routes.processType, team: routes.team, managedBy: FIELD_MANAGER });
  const replicaOf = new Map((routes.replicaHostnames ?? []).map(({ hostname, replica }) => [hostname, replica]));
  const serviceOf = (host: string) => {
    const replica = replicaOf.get(host);
    return replica === undefined ? name : replicaServiceName(name, replica);
  };
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: {
      name,
      namespace: teamNamespace(options.namespace, routes.team),
      labels,
      annotations: { "cert-manager.io/cluster-issuer": options.clusterIssuer },
    },
    spec: {
      ingressClassName: options.ingressClass,
      tls: routes.hostnames.map((host) => ({ hosts: [host], secretName: tlsSecretName(name, host) })),
      rules: routes.hostnames.map((host) => ({
        host,
        http: {
          paths: [
            {
              path: "/",
              pathType: "Prefix",
              backend: { service: { name: serviceOf(host), port: { number: options.webServicePort } } },
            },
          ],
        },
      })),
    },
  };
}

/** Each hostname of the Ingresses with the `namespace/name` of the Certificate ingress-shim makes for its TLS entry. */
export function certificatesOf(ingresses: readonly ReturnType<typeof ingressFor>[]): Map<string, string> {
  const certificates = new Map<string, string>();
  for (const ingress of ingresses) {
    const tls = (ingress.spec as { tls: { hosts: string[]; secretName: string }[] }).tls;
    for (const entry of tls) for (const host of entry.hosts) certificates.set(host, `${ingress.metadata!.namespace}/${entry.secretName}`);
  }
  return certificates;
}

/**
 * The kubernetes engine: server-side applies an Ingress per routed web or
 * rtc process (and a Service per rtc replica), deletes the ones it manages
 * that are no longer wanted, and follows cert-manager's Certificates into
 * the certificate state per hostname.
 */
export function createIngressEngine(options: IngressEngineOptions): RoutingEngine {
  const client = KubernetesObjectApi.makeApiClient(options.kubeConfig);
  const certificates = followCertificateStatus({ kubeConfig: options.kubeConfig, store: options.store, logger: options.logger });
  // Every team's namespace: an app whose routes all went has its Ingress pruned wherever it is.
  const managed = labelSelector({ [LABEL.managedBy]: FIELD_MANAGER });
  const prune = [
    { apiVersion: "networking.k8s.io/v1", kind: "Ingress", namespace: "", labelSelector: managed },
    { apiVersion: "v1", kind: "Service", namespace: "", labelSelector: managed },
  ];
  return {
    async apply(desired) {
      // A scaled-down rtc process's routes are gone from `desired`: its replica Services and rules are pruned with them.
      const routed = desired.filter((routes) => routes.hostnames.length > 0 && ROUTED_CLASSES.has(routingClassOf(routes.processType)));
      const ingresses = routed.map((routes) => ingressFor(routes, options));
      // The Services first: an Ingress rule whose backend does not exist yet is an error on some controllers.
      const objects = [...routed.flatMap((routes) => replicaServicesFor(routes, options)), ...ingresses];
      const result = await applyObjectSet({ client, fieldManager: FIELD_MANAGER, objects, prune });
      for (const name of result.pruned) options.logger.info("routing object pruned", { name });
      await certificates.expect(certificatesOf(ingresses));
    },
    close: () => certificates.close(),
  };
}
