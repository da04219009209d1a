import type { KindRegistry } from "../registry.js";
import type { ObjectStore } from "../store.js";
import {
  type CertificateIssuanceHook,
  type CertificateTimings,
  certificateController,
  defaultCertificateTimings,
  ingressShimController,
} from "./cert-manager.js";
import { deploymentController } from "./deployment.js";
import { endpointSliceController } from "./endpoint-slice.js";
import { garbageCollector } from "./garbage-collector.js";
import { hpaController, type Utilization } from "./hpa.js";
import { jobController } from "./job.js";
import { createKubelet, defaultNodes, defaultTimings, type FakeNode, type Kubelet, type PodBehaviourHook, type PodTimings } from "./kubelet.js";
import { replicaSetController } from "./replica-set.js";
import { statefulSetController } from "./stateful-set.js";
import { type Cluster, clusterOf, runControllers, type ControllerRuntime } from "./runtime.js";

export type { CertificateIssuanceHook, CertificateTimings } from "./cert-manager.js";
export type { FakeNode, PodBehaviour, PodBehaviourHook, PodOutcome, PodTimings } from "./kubelet.js";

/** Options of the simulated cluster behind the API. */
export interface ClusterOptions {
  nodes?: readonly FakeNode[];
  podBehaviour?: PodBehaviourHook;
  podTimings?: Partial<PodTimings>;
  certificateIssuance?: CertificateIssuanceHook;
  certificateTimings?: Partial<CertificateTimings>;
}

/** The controllers and kubelet of a running fake cluster. */
export interface SimulatedCluster {
  /** The objects as the controllers read them (the exec simulation reads pods and Secrets through it). */
  objects: Cluster;
  kubelet: Kubelet;
  runtime: ControllerRuntime;
  utilization: Utilization;
  setPodBehaviour(hook: PodBehaviourHook | undefined): void;
  setCertificateIssuance(hook: CertificateIssuanceHook | undefined): void;
  stop(): void;
}

/** Starts the controllers a real cluster runs (as simulations) against `store`, and registers the nodes. */
export function startCluster(store: ObjectStore, registry: KindRegistry, options: ClusterOptions): SimulatedCluster {
  const cluster = clusterOf(store, registry);
  let behaviour = options.podBehaviour;
  let issuance = options.certificateIssuance;
  const utilization: Utilization = new Map();
  const kubelet = createKubelet(cluster, options.nodes ?? defaultNodes, () => behaviour, { ...defaultTimings, ...options.podTimings });
  const runtime = runControllers(store, [
    kubelet,
    replicaSetController(cluster),
    deploymentController(cluster),
    statefulSetController(cluster),
    endpointSliceController(cluster),
    jobController(cluster),
    hpaController(cluster, utilization),
    garbageCollector(cluster, registry),
    ingressShimController(cluster),
    certificateController(cluster, () => issuance, { ...defaultCertificateTimings, ...options.certificateTimings }),
  ]);
  kubelet.registerNodes();
  return {
    objects: cluster,
    kubelet,
    runtime,
    utilization,
    setPodBehaviour: (hook) => (behaviour = hook),
    setCertificateIssuance: (hook) => (issuance = hook),
    stop() {
      runtime.stop();
      kubelet.stop();
    },
  };
}
