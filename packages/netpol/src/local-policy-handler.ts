import type { ServiceImpl } from "@connectrpc/connect";
import type { LocalAllow, NetpolService } from "@berth/proto/netpol/v1/netpol";
import { compileLocalPolicy } from "./compile/local-policy.js";
import type { PolicyModel } from "./policy-model.js";
import type { PolicyState } from "./policy-state.js";

/** The local policy of a model, compiled once however many runtimes watch it and explain answers read it. */
export function createLocalPolicyCache(): (model: PolicyModel) => LocalAllow[] {
  const compiled = new WeakMap<PolicyModel, LocalAllow[]>();
  return (model) => {
    let allows = compiled.get(model);
    if (!allows) compiled.set(model, (allows = compileLocalPolicy(model)));
    return allows;
  };
}

/**
 * WatchLocalPolicy: the whole local policy on connect, then the whole
 * policy again after every change. A runtime that falls behind skips the
 * versions in between: each message replaces everything before it.
 */
export function createLocalPolicyHandler(
  state: PolicyState,
  compiled: (model: PolicyModel) => LocalAllow[],
): Pick<ServiceImpl<typeof NetpolService>, "watchLocalPolicy"> {
  return {
    async *watchLocalPolicy(_request, ctx) {
      let wake: (() => void) | undefined;
      let pending = true;
      const stop = state.subscribe(() => {
        pending = true;
        wake?.();
      });
      const onAbort = () => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        while (!ctx.signal.aborted) {
          if (!pending) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          pending = false;
          const snapshot = state.current();
          yield { version: snapshot.version, allows: compiled(snapshot.model) };
        }
      } finally {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
