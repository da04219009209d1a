import type { CertificateManager } from "../tls/certificate-manager.js";
import type { RoutingEngine } from "./routing-engine.js";

/**
 * The local engine: the in-process proxy already follows the route table, so
 * applying routes means having a certificate for every hostname (none when TLS is off).
 */
export function createLocalRoutingEngine(certificates: CertificateManager | undefined): RoutingEngine {
  return {
    async apply(desired, certificateOnly) {
      await certificates?.sync([...desired.flatMap((process) => process.hostnames), ...(certificateOnly ?? [])]);
    },
  };
}
