/**
 * The public hostnames of one routed process: a web process's platform route
 * first, then its custom domains; an rtc process's per-replica hostnames.
 */
export interface WebProcessRoutes {
  team: string;
  app: string;
  processType: string;
  hostnames: string[];
  /** An rtc process's: the replica (1, 2, …) each of its hostnames reaches alone. */
  replicaHostnames?: { hostname: string; replica: number }[];
}

/**
 * Makes a runtime serve the routes: on the local engine the router's own
 * proxy serves them and only certificates are needed; on Kubernetes, Ingress
 * objects are applied and cert-manager obtains the certificates.
 */
export interface RoutingEngine {
  /**
   * Converges the runtime on exactly `desired` (idempotent; what is not
   * listed is pruned), with certificates also for `certificateOnly`
   * hostnames that are served by something else (TURN gateways' TLS).
   */
  apply(desired: readonly WebProcessRoutes[], certificateOnly?: readonly string[]): Promise<void>;
  /** Stops what the engine follows in the background (the kubernetes engine's Certificate watch). */
  close?(): void;
}
