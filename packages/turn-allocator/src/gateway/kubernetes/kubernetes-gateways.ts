import { LABEL, applyObjectSet, objectApiOf } from "@berth/kit";
import type { Logger, ObjectApiSource } from "@berth/kit";
import type { GatewayEngine } from "../gateway-spec.js";
import { TURN_MANAGER, coturnObjects } from "./coturn-objects.js";
import type { CoturnSettings } from "./coturn-objects.js";

/** Options of the kubernetes gateway engine. */
export type KubernetesGatewayOptions = ObjectApiSource & { settings: CoturnSettings; logger: Logger };

/**
 * Server-side applies every gateway's objects as one set and prunes the
 * turn-allocator's objects no allocation holds any more. Kubernetes itself
 * supervises the pods.
 */
export function createKubernetesGateways(options: KubernetesGatewayOptions): GatewayEngine {
  const { settings, logger } = options;
  const labelSelector = `${LABEL.managedBy}=${TURN_MANAGER}`;
  const scope = (apiVersion: string, kind: string) => ({ apiVersion, kind, namespace: settings.namespace, labelSelector });
  // One client for every pass, so discovery is cached.
  const client = objectApiOf(options);
  return {
    async apply(specs) {
      const result = await applyObjectSet({
        client: await client,
        fieldManager: TURN_MANAGER,
        objects: specs.flatMap((spec) => coturnObjects(spec, settings)),
        prune: [scope("apps/v1", "Deployment"), scope("v1", "Service"), scope("v1", "Secret")],
      });
      if (result.applied.length > 0 || result.pruned.length > 0) logger.info("coturn gateways applied", { applied: result.applied, pruned: result.pruned });
    },
    async close() {},
  };
}
