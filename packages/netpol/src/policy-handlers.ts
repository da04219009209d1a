import type { ServiceImpl } from "@connectrpc/connect";
import { dnsLabelProblem, failedPrecondition, invalidArguments, notFound } from "@berth/kit";
import type { FieldViolation } from "@berth/kit";
import type { NetpolService } from "@berth/proto/netpol/v1/netpol";
import { appNotFound } from "./app-lookup.js";
import { compileTeamPolicies } from "./compile/kubernetes-policies.js";
import type { KubernetesPolicySettings } from "./compile/kubernetes-policies.js";
import type { PolicyEngine } from "./engine/kubernetes-policy-engine.js";
import { MAX_MATRIX_APPS, teamMatrix } from "./explain/reachability.js";
import type { Explainer } from "./explain/reachability.js";
import type { AppEntry } from "./policy-model.js";
import { teamApps } from "./policy-model.js";
import type { PolicyState } from "./policy-state.js";

/** What Explain, GetMatrix and PlanPolicies work on. */
export interface PolicyHandlerDeps {
  state: PolicyState;
  /** Answers from the compilation the platform's engine enforces. */
  explainer: Explainer;
  /** The port a process listens on as the engine runs it (0 when it listens on none or the engine cannot say). */
  portOf(app: AppEntry, processType: string): number;
  engine: PolicyEngine;
  settings: KubernetesPolicySettings;
  /** False on the local engine: PlanPolicies may only dry-run. */
  canApply: boolean;
}

function check(entries: [field: string, value: string, optional?: boolean][], extra: FieldViolation[] = []): void {
  const violations = [...extra];
  for (const [field, value, optional] of entries) {
    if (optional && value === "") continue;
    const problem = dnsLabelProblem(value);
    if (problem !== undefined) violations.push({ field, description: problem });
  }
  if (violations.length > 0) throw invalidArguments(violations);
}

function requireProcess(app: AppEntry, processType: string): void {
  if (!app.processes.some((process) => process.processType === processType)) throw notFound(`process "${processType}" of app "${app.name}" not found`);
}

/** Explain, GetMatrix and PlanPolicies: answers from the compiled policies, never from the trust table. */
export function createPolicyHandlers(deps: PolicyHandlerDeps): Pick<ServiceImpl<typeof NetpolService>, "explain" | "getMatrix" | "planPolicies"> {
  return {
    async explain(request) {
      const portProblem = request.port > 65535 ? [{ field: "port", description: `must be a port number, got ${request.port}` }] : [];
      check(
        [
          ["from_app", request.fromApp],
          ["from_process_type", request.fromProcessType, true],
          ["to_app", request.toApp],
          ["to_process_type", request.toProcessType],
        ],
        portProblem,
      );
      const { model } = deps.state.current();
      const from = model.apps.get(request.fromApp);
      const to = model.apps.get(request.toApp);
      if (!from) throw appNotFound(request.fromApp);
      if (!to) throw appNotFound(request.toApp);
      if (request.fromProcessType !== "") requireProcess(from, request.fromProcessType);
      requireProcess(to, request.toProcessType);
      const verdict = deps.explainer.explain(model, {
        from,
        fromProcessType: request.fromProcessType,
        to,
        toProcessType: request.toProcessType,
        port: request.port,
      });
      return { verdict };
    },

    async getMatrix(request) {
      check([["team", request.team]]);
      const { model } = deps.state.current();
      const apps = teamApps(model, request.team).length;
      if (apps > MAX_MATRIX_APPS)
        throw failedPrecondition(`team "${request.team}" has ${apps} apps, a matrix covers at most ${MAX_MATRIX_APPS}: ask Explain about one pair`);
      return { entries: teamMatrix(model, request.team, deps.explainer, deps.portOf) };
    },

    async planPolicies(request) {
      check([["team", request.team]]);
      if (!request.dryRun && !deps.canApply)
        throw failedPrecondition("the local engine enforces policies without NetworkPolicies: only a dry run shows them (set dry_run)");
      const desired = compileTeamPolicies(deps.state.current().model, request.team, deps.settings);
      const plan = await deps.engine.plan(request.team, desired, request.dryRun);
      return {
        applied: plan.applied,
        changes: plan.changes.map((change) => ({
          action: change.action,
          name: change.name,
          namespace: change.namespace,
          objectJson: change.object ? JSON.stringify(change.object) : "",
        })),
      };
    },
  };
}
