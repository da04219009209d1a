import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { dnsLabelProblem, invalidArgument, invalidArguments } from "@berth/kit";
import type { FieldViolation } from "@berth/kit";
import { TrustMode } from "@berth/proto/netpol/v1/netpol";
import type { NetpolService } from "@berth/proto/netpol/v1/netpol";
import { appNotFound } from "./app-lookup.js";
import type { AppLookup } from "./app-lookup.js";
import { withAppChanges, withoutTrustOf, withTrustList } from "./model-changes.js";
import type { AppEntry, PolicyModel } from "./policy-model.js";
import { trustOf } from "./policy-model.js";
import type { PolicyState, PolicyUpdate } from "./policy-state.js";
import type { NetpolStore } from "./store/netpol-store.js";

/** Names one SetTrust request may carry. */
export const MAX_TRUSTED_PER_REQUEST = 100;
/** Apps one trust list may hold. */
export const MAX_TRUST_LIST = 1000;

/** What the trust handlers work on. */
export interface TrustDeps {
  state: PolicyState;
  store: NetpolStore;
  lookup: AppLookup;
  /** Deadline of a call to the scheduler when the caller set none. */
  callTimeoutMs: number;
}

function checkName(violations: FieldViolation[], field: string, value: string): void {
  const problem = dnsLabelProblem(value);
  if (problem !== undefined) violations.push({ field, description: problem });
}

function throwIfAny(violations: FieldViolation[]): void {
  if (violations.length > 0) throw invalidArguments(violations);
}

/** The trust list message of `app` in `model`. */
const trustList = (model: PolicyModel, app: string) => ({ app, trustedApps: [...trustOf(model, app)] });

/** TrustService handlers of NetpolService: reading and changing trust lists, and forgetting deleted apps. */
export function createTrustHandlers(
  deps: TrustDeps,
): Pick<ServiceImpl<typeof NetpolService>, "getTrust" | "setTrust" | "removeTrust" | "clearTrust" | "forgetApp"> {
  const { state, store } = deps;
  const callOptions = (ctx: HandlerContext) => ({ signal: ctx.signal, timeoutMs: ctx.timeoutMs() ?? deps.callTimeoutMs });

  /** The app named, known to the model (added to it when only the scheduler knew it yet), or NOT_FOUND. */
  async function requireApp(model: PolicyModel, name: string, ctx: HandlerContext): Promise<{ app: AppEntry; model: PolicyModel }> {
    const app = await deps.lookup(model, name, callOptions(ctx));
    if (!app) throw appNotFound(name);
    return { app, model: model.apps.has(name) ? model : withAppChanges(model, { apps: [app], deleted: [], snapshot: false }) };
  }

  /** The same app of `team`, or NOT_FOUND exactly as for a missing app. */
  async function requireSibling(model: PolicyModel, name: string, team: string, ctx: HandlerContext): Promise<PolicyModel> {
    const found = await requireApp(model, name, ctx);
    if (found.app.team !== team) throw appNotFound(name);
    return found.model;
  }

  /** Stores `app`'s new list (and any app first met through the scheduler) and publishes the model. */
  async function writeTrust(
    before: PolicyModel,
    model: PolicyModel,
    app: string,
    trusted: readonly string[],
  ): Promise<PolicyUpdate<ReturnType<typeof trustList>> | { result: ReturnType<typeof trustList> }> {
    const learnt = [...model.apps.values()].filter((entry) => !before.apps.has(entry.name));
    if (learnt.length > 0) await store.applyAppChanges({ apps: learnt, deleted: [], snapshot: false });
    const next = withTrustList(model, app, trusted);
    const unchanged = trustOf(next, app).join() === trustOf(before, app).join();
    if (unchanged && learnt.length === 0) return { result: trustList(before, app) };
    const version = await store.replaceTrust(app, trustOf(next, app));
    return { model: next, version, result: trustList(next, app) };
  }

  return {
    async getTrust(request, ctx) {
      const violations: FieldViolation[] = [];
      checkName(violations, "app", request.app);
      throwIfAny(violations);
      const model = state.current().model;
      await requireApp(model, request.app, ctx);
      return { trust: trustList(model, request.app) };
    },

    async setTrust(request, ctx) {
      const violations: FieldViolation[] = [];
      checkName(violations, "app", request.app);
      if (request.mode !== TrustMode.REPLACE && request.mode !== TrustMode.ADD)
        violations.push({ field: "mode", description: "must be TRUST_MODE_REPLACE or TRUST_MODE_ADD" });
      if (request.trustedApps.length > MAX_TRUSTED_PER_REQUEST) {
        violations.push({ field: "trusted_apps", description: `must name at most ${MAX_TRUSTED_PER_REQUEST} apps, got ${request.trustedApps.length}` });
      } else {
        request.trustedApps.forEach((name, index) => {
          checkName(violations, `trusted_apps[${index}]`, name);
          if (name === request.app)
            violations.push({ field: `trusted_apps[${index}]`, description: "an app always reaches its own processes: it cannot trust itself" });
        });
      }
      if (request.mode === TrustMode.ADD && request.trustedApps.length === 0)
        violations.push({ field: "trusted_apps", description: "must name at least one app to add" });
      throwIfAny(violations);
      return {
        trust: await state.update(async (before) => {
          const target = await requireApp(before, request.app, ctx);
          let model = target.model;
          for (const name of new Set(request.trustedApps)) model = await requireSibling(model, name, target.app.team, ctx);
          const trusted = request.mode === TrustMode.ADD ? [...trustOf(model, request.app), ...request.trustedApps] : request.trustedApps;
          if (new Set(trusted).size > MAX_TRUST_LIST) throw invalidArgument("trusted_apps", `a trust list holds at most ${MAX_TRUST_LIST} apps`);
          return writeTrust(before, model, request.app, trusted);
        }),
      };
    },

    async removeTrust(request, ctx) {
      const violations: FieldViolation[] = [];
      checkName(violations, "app", request.app);
      checkName(violations, "trusted_app", request.trustedApp);
      throwIfAny(violations);
      return {
        trust: await state.update(async (before) => {
          const target = await requireApp(before, request.app, ctx);
          const model = await requireSibling(target.model, request.trustedApp, target.app.team, ctx);
          return writeTrust(
            before,
            model,
            request.app,
            trustOf(model, request.app).filter((name) => name !== request.trustedApp),
          );
        }),
      };
    },

    async clearTrust(request, ctx) {
      const violations: FieldViolation[] = [];
      checkName(violations, "app", request.app);
      throwIfAny(violations);
      await state.update(async (before) => writeTrust(before, (await requireApp(before, request.app, ctx)).model, request.app, []));
      return {};
    },

    async forgetApp(request) {
      const violations: FieldViolation[] = [];
      checkName(violations, "app", request.app);
      throwIfAny(violations);
      // Idempotent: the API retries a half-done app deletion, and an unknown app is already forgotten.
      await state.update(async (model) => {
        if (!model.apps.has(request.app)) return { result: undefined };
        const version = await store.forgetTrust(request.app);
        return { model: withoutTrustOf(model, request.app), version, result: undefined };
      });
      return {};
    },
  };
}
