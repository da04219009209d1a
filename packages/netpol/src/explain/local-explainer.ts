import type { LocalAllow } from "@berth/proto/netpol/v1/netpol";
import type { PolicyModel } from "../policy-model.js";
import type { Explainer, ReachabilityQuery } from "./reachability.js";
import { classOf, contractReason, missingGrant } from "./reachability.js";

/** Whether `allow` lets the query's source app into its target process. */
function admits(allow: LocalAllow, query: ReachabilityQuery): boolean {
  const from = allow.from?.kind;
  return (
    from?.case === "app" &&
    from.value === query.from.name &&
    allow.toApp === query.to.name &&
    allow.toClass === classOf(query.to, query.toProcessType) &&
    (allow.toProcessType === "" || allow.toProcessType === query.toProcessType)
  );
}

/**
 * Explains from the rules compiled for one machine (what the local runtime
 * enforces): an app's replicas get through only where an allow names them,
 * and only on the target process's own port.
 */
export function createLocalExplainer(allowsOf: (model: PolicyModel) => readonly LocalAllow[]): Explainer {
  return {
    explain(model, query) {
      const target = `${query.to.name}/${query.toProcessType}`;
      const matching = allowsOf(model).filter((allow) => admits(allow, query));
      const listening = query.to.processes.find((process) => process.processType === query.toProcessType)?.port ?? 0;
      if (matching.length === 0) {
        const reasons = ["everything not allowed is denied (default deny)", `no rule lets app ${query.from.name} into ${target}`];
        const missing = contractReason(query) ?? missingGrant(model, query);
        if (missing) reasons.push(missing);
        return { allowed: false, reasons, policies: [] };
      }
      const rules = matching.map((allow) => allow.rule);
      if (query.port !== 0 && listening !== 0 && query.port !== listening) {
        return {
          allowed: false,
          reasons: [`rule ${rules.join(", ")} admits app ${query.from.name} into ${target}, but only on its port ${listening}, not ${query.port}`],
          policies: rules,
        };
      }
      return {
        allowed: true,
        reasons: [`rule ${rules.join(", ")} lets app ${query.from.name} into ${target}${listening ? ` on port ${listening}` : ""}`],
        policies: rules,
      };
    },
  };
}
