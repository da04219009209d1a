import { createFieldChecks, failedPrecondition, invalidArgument, MIN_CPU_MILLIS, MIN_MEMORY_MB } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { AutoscaleRule } from "@berth/proto/type/v1/process";
import type { FormationChange } from "@berth/proto/scheduler/v1/scheduler";
import { healthOverridesFrom } from "./health-settings.js";
import type { HealthOverrides } from "./health-settings.js";
import { DEFAULT_POD_SIZE, POD_SIZES, podSize } from "./pod-sizes.js";

/** The stored formation of one process type. */
export interface FormationEntry {
  processType: string;
  replicas: number;
  size: string;
  /** Explicit overrides of the size's resources, or null. */
  cpuMillis: number | null;
  memoryMb: number | null;
  health: HealthOverrides;
  /** Grows by one with each rolling restart of the type. */
  restartGeneration: number;
  /** When `ps:restart` last restarted the type; on Kubernetes its pods' kubectl.kubernetes.io/restartedAt. */
  restartedAt?: Date | null;
}

/** A validated change to one type's formation. */
export interface FormationPatch {
  processType: string;
  replicas?: number;
  size?: string;
  cpuMillis?: number;
  memoryMb?: number;
  health?: HealthOverrides;
  clearResourceOverrides: boolean;
}

/** What a formation change is checked against. */
export interface FormationContext {
  /** The app's process types and their routing classes (from its latest release). */
  types: ReadonlyMap<string, RoutingClass>;
  /** Autoscale rules by process type. */
  rules: ReadonlyMap<string, AutoscaleRule>;
  maxReplicas: number;
}

const LARGEST = POD_SIZES[POD_SIZES.length - 1]!;

/** Why `processType` cannot be part of a formation change, or undefined when it can. */
function processTypeProblem(processType: string, types: ReadonlyMap<string, RoutingClass>): string | undefined {
  if (processType === "") return "must not be empty";
  const routingClass = types.get(processType);
  if (routingClass === undefined) return `unknown process type "${processType}" (the app has: ${[...types.keys()].join(", ") || "none"})`;
  if (routingClass === RoutingClass.RELEASE) return `"release" runs once per deploy and has no formation`;
  return undefined;
}

/**
 * Checks every change completely and returns the patches to apply. Throws
 * INVALID_ARGUMENT naming each bad field, or FAILED_PRECONDITION naming the
 * autoscale rule that governs a type whose replicas the change sets.
 */
export function validateFormationChanges(changes: readonly FormationChange[], context: FormationContext): FormationPatch[] {
  const checks = createFieldChecks();
  if (changes.length === 0) checks.add("changes", "must name at least one process type");
  const seen = new Set<string>();
  const patches: FormationPatch[] = changes.map((change, index) => {
    const field = (name: string) => `changes[${index}].${name}`;
    const patch: FormationPatch = { processType: change.processType, clearResourceOverrides: change.clearResourceOverrides };
    const typeProblem = processTypeProblem(change.processType, context.types);
    if (typeProblem !== undefined) checks.add(field("process_type"), typeProblem);
    else if (seen.has(change.processType)) checks.add(field("process_type"), `"${change.processType}" is changed twice`);
    seen.add(change.processType);
    if (change.replicas !== undefined) {
      if (change.replicas > context.maxReplicas) {
        checks.add(field("replicas"), `must be between 0 and ${context.maxReplicas}, got ${change.replicas}`);
      }
      patch.replicas = change.replicas;
    }
    if (change.size !== undefined) {
      if (podSize(change.size) === undefined) {
        checks.add(field("size"), `unknown pod size "${change.size}" (sizes: ${POD_SIZES.map((s) => s.name).join(", ")})`);
      }
      patch.size = change.size;
    }
    if (change.cpuMillis !== undefined) {
      if (change.cpuMillis < MIN_CPU_MILLIS || change.cpuMillis > LARGEST.cpuMillis) {
        checks.add(field("cpu_millis"), `must be between ${MIN_CPU_MILLIS} and ${LARGEST.cpuMillis}, got ${change.cpuMillis}`);
      }
      patch.cpuMillis = change.cpuMillis;
    }
    if (change.memoryMb !== undefined) {
      if (change.memoryMb < MIN_MEMORY_MB || change.memoryMb > LARGEST.memoryMb) {
        checks.add(field("memory_mb"), `must be between ${MIN_MEMORY_MB} and ${LARGEST.memoryMb}, got ${change.memoryMb}`);
      }
      patch.memoryMb = change.memoryMb;
    }
    if (change.clearResourceOverrides && (change.cpuMillis !== undefined || change.memoryMb !== undefined)) {
      checks.add(field("clear_resource_overrides"), "cannot be combined with cpu_millis or memory_mb");
    }
    if (change.health !== undefined) {
      const health = healthOverridesFrom(change.health, field("health"));
      for (const violation of health.violations) checks.add(violation.field, violation.description);
      patch.health = health.overrides;
    }
    return patch;
  });
  checks.throwIfAny();
  for (const patch of patches) {
    const rule = context.rules.get(patch.processType);
    if (patch.replicas !== undefined && rule !== undefined) {
      throw failedPrecondition(
        `autoscale rule for "${patch.processType}" (min ${rule.minReplicas}, max ${rule.maxReplicas}, cpu ${rule.targetCpuPercent}%) ` +
          `sets its replicas; unset the rule before scaling "${patch.processType}" by hand`,
      );
    }
  }
  return patches;
}

/** The formation entry after `patch`; a change of resources starts a rolling restart of the type. */
export function applyFormationPatch(entry: FormationEntry, patch: FormationPatch): FormationEntry {
  const next: FormationEntry = { ...entry, health: { ...entry.health, ...patch.health } };
  if (patch.replicas !== undefined) next.replicas = patch.replicas;
  if (patch.size !== undefined) next.size = patch.size;
  if (patch.clearResourceOverrides) {
    next.cpuMillis = null;
    next.memoryMb = null;
  }
  if (patch.cpuMillis !== undefined) next.cpuMillis = patch.cpuMillis;
  if (patch.memoryMb !== undefined) next.memoryMb = patch.memoryMb;
  // New resources are new cgroup limits: the running replicas roll onto them.
  const [before, after] = [effectiveResources(entry), effectiveResources(next)];
  if (before.cpuMillis !== after.cpuMillis || before.memoryMb !== after.memoryMb) next.restartGeneration = entry.restartGeneration + 1;
  return next;
}

/** The CPU and memory a type's replicas get: the overrides, or its size's. */
export function effectiveResources(entry: Pick<FormationEntry, "size" | "cpuMillis" | "memoryMb">): { cpuMillis: number; memoryMb: number } {
  const size = podSize(entry.size) ?? POD_SIZES[0]!;
  return { cpuMillis: entry.cpuMillis ?? size.cpuMillis, memoryMb: entry.memoryMb ?? size.memoryMb };
}

/**
 * The CPU and memory of an app's release command. "release" has no
 * formation entry of its own (it runs once per deploy), and it runs the
 * app's own code against the app's data (migrations, asset uploads): it gets
 * what the app's web process gets, size and overrides, so a migration the web
 * process could run does not run out of memory in the release phase. An app
 * without a web process gets its largest type's (by memory); an app with no
 * formation yet, the default size.
 */
export function releaseTaskResources(formation: readonly Pick<FormationEntry, "processType" | "size" | "cpuMillis" | "memoryMb">[]): {
  cpuMillis: number;
  memoryMb: number;
} {
  const web = formation.find((entry) => entry.processType === "web");
  if (web !== undefined) return effectiveResources(web);
  const sizes = formation.map(effectiveResources).sort((a, b) => b.memoryMb - a.memoryMb || b.cpuMillis - a.cpuMillis);
  return sizes[0] ?? effectiveResources({ size: DEFAULT_POD_SIZE, cpuMillis: null, memoryMb: null });
}

/**
 * Checks an autoscale rule completely; throws INVALID_ARGUMENT naming each bad field.
 */
export function validateAutoscaleRule(rule: AutoscaleRule | undefined, context: Pick<FormationContext, "types" | "maxReplicas">): AutoscaleRule {
  if (rule === undefined) throw invalidArgument("rule", "is required");
  const checks = createFieldChecks();
  const typeProblem = processTypeProblem(rule.processType, context.types);
  if (typeProblem !== undefined) checks.add("rule.process_type", typeProblem);
  if (rule.minReplicas < 1 || rule.minReplicas > context.maxReplicas) {
    checks.add("rule.min_replicas", `must be between 1 and ${context.maxReplicas}, got ${rule.minReplicas}`);
  }
  if (rule.maxReplicas < Math.max(rule.minReplicas, 1) || rule.maxReplicas > context.maxReplicas) {
    checks.add("rule.max_replicas", `must be between min_replicas and ${context.maxReplicas}, got ${rule.maxReplicas}`);
  }
  if (rule.targetCpuPercent < 1 || rule.targetCpuPercent > 100) {
    checks.add("rule.target_cpu_percent", `must be between 1 and 100, got ${rule.targetCpuPercent}`);
  }
  checks.throwIfAny();
  return rule;
}
