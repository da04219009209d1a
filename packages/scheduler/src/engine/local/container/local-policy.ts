import type { Client } from "@connectrpc/connect";
import { followStream } from "@berth/kit";
import type { Logger } from "@berth/kit";
import type { NetpolService, WatchLocalPolicyResponse } from "@berth/proto/netpol/v1/netpol";
import type { AppAllow } from "./nft-ruleset.js";

/**
 * The app-to-app allows of netpol's compiled local policy. Allows from the
 * router (ingress) and from TURN gateways need no rule here: both run on the
 * host, whose connections to the bridge are never filtered.
 */
export function appAllowsOf(policy: WatchLocalPolicyResponse): AppAllow[] {
  return policy.allows.flatMap((allow) =>
    allow.from?.kind.case === "app"
      ? [{ rule: allow.rule, fromApp: allow.from.kind.value, toApp: allow.toApp, toClass: allow.toClass, toProcessType: allow.toProcessType }]
      : [],
  );
}

/**
 * Follows netpol's local policy for as long as `signal` is live and hands
 * every version to `apply`. While netpol is unreachable the last policy
 * stays in force (the firewall denies by default, so nothing opens up).
 */
export function followLocalPolicy(options: {
  client: Client<typeof NetpolService>;
  apply(allows: AppAllow[]): Promise<void>;
  signal: AbortSignal;
  logger: Logger;
}): Promise<void> {
  let version: bigint | undefined;
  return followStream({
    name: "netpol local policy",
    open: (callOptions) => options.client.watchLocalPolicy({}, callOptions),
    async onMessage(policy) {
      if (policy.version === version) return;
      version = policy.version;
      await options.apply(appAllowsOf(policy));
      options.logger.info("local network policy applied", { version: String(policy.version), allows: policy.allows.length });
    },
    onDown: () => undefined,
    signal: options.signal,
    logger: options.logger,
  });
}
