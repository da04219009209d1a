import type { ServiceImpl } from "@connectrpc/connect";
import type { LocalAllow, NetpolService } from "@berth/proto/netpol/v1/netpol";
import { compileLocalPolicy } from "./compile/local-policy.js";
import type { PolicySnapshot, PolicyState } from "./policy-state.js";

/** The local policy compiled from one snapshot, compiled once however many runtimes watch it. */
export function createLocalPolicyCache(): (snapshot: PolicySnapshot) => LocalAllow[] {
  let cached: { snapshot: PolicySnapshot; allows: LocalAllow[] } | undefined;
  return (snapshot) => {
    if (cached?.snapshot !== snapshot) cached = { snapshot, allows: compileLocalPolicy(snapshot.model) };
    return cached.allows;
  };
}

/**
 * WatchLocalPolicy: the whole local policy on connect, then the whole
 * policy again after every change. A runtime that falls behind skips the
 * versions in between: each message replaces everything before it.
 */
export function createLocalPolicyHandler(state: PolicyState, compiled: (snapshot: PolicySnapshot) => LocalAllow[]): Pick<ServiceImpl<typeof NetpolService>, "watchLocalPolicy"> {
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
          yield { version: snapshot.version, allows: compiled(snapshot) };
        }
      } finally {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
