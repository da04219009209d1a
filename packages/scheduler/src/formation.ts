import type { FieldViolation } from "@berth/kit";
import { failedPrecondition, invalidArguments } from "@berth/kit";
import { RoutingClass } from "@berth/proto/type/v1/process";
import type { AutoscaleRule } from "@berth/proto/type/v1/process";
import type { FormationChange } from "@berth/proto/scheduler/v1/scheduler";
import { healthOverridesFrom } from "./health-settings.js";
import type { HealthOverrides } from "./health-settings.js";
import { MIN_CPU_MILLIS, MIN_MEMORY_MB, POD_SIZES, podSize } from "./pod-sizes.js";

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
  const violations: FieldViolation[] = [];
  if (changes.length === 0) violations.push({ field: "changes", description: "must name at least one process type" });
  const seen = new Set<string>();
  const patches: FormationPatch[] = changes.map((change, index) => {
    const field = (name: string) => `changes[${index}].${name}`;
    const patch: FormationPatch = { processType: change.processType, clearResourceOverrides: change.clearResourceOverrides };
    const typeProblem = processTypeProblem(change.processType, context.types);
    if (typeProblem !== undefined) violations.push({ field: field("process_type"), description: typeProblem });
    else if (seen.has(change.processType)) violations.push({ field: field("process_type"), description: `"${change.processType}" is changed twice` });
    seen.add(change.processType);
    if (change.replicas !== undefined) {
      if (change.replicas > context.maxReplicas) {
        violations.push({ field: field("replicas"), description: `must be between 0 and ${context.maxReplicas}, got ${change.replicas}` });
      }
      patch.replicas = change.replicas;
    }
    if (change.size !== undefined) {
      if (podSize(change.size) === undefined) {
        violations.push({ field: field("size"), description: `unknown pod size "${change.size}" (sizes: ${POD_SIZES.map((s) => s.name).join(", ")})` });
      }
      patch.size = change.size;
    }
    if (change.cpuMillis !== undefined) {
      if (change.cpuMillis < MIN_CPU_MILLIS || change.cpuMillis > LARGEST.cpuMillis) {
        violations.push({ field: field("cpu_millis"), description: `must be between ${MIN_CPU_MILLIS} and ${LARGEST.cpuMillis}, got ${change.cpuMillis}` });
      }
      patch.cpuMillis = change.cpuMillis;
    }
    if (change.memoryMb !== undefined) {
      if (change.memoryMb < MIN_MEMORY_MB || change.memoryMb > LARGEST.memoryMb) {
        violations.push({ field: field("memory_mb"), description: `must be between ${MIN_MEMORY_MB} and ${LARGEST.memoryMb}, got ${change.memoryMb}` });
      }
      patch.memoryMb = change.memoryMb;
    }
    if (change.clearResourceOverrides && (change.cpuMillis !== undefined || change.memoryMb !== undefined)) {
      violations.push({ field: field("clear_resource_overrides"), description: "cannot be combined with cpu_millis or memory_mb" });
    }
    if (change.health !== undefined) {
      const health = healthOverridesFrom(change.health, field("health"));
      violations.push(...health.violations);
      patch.health = health.overrides;
    }
    return patch;
  });
  if (violations.length > 0) throw invalidArguments(violations);
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

/** The formation entry after `patch`. */
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
  return next;
}

/** The CPU and memory a type's replicas get: the overrides, or its size's. */
export function effectiveResources(entry: Pick<FormationEntry, "size" | "cpuMillis" | "memoryMb">): { cpuMillis: number; memoryMb: number } {
  const size = podSize(entry.size) ?? POD_SIZES[0]!;
  return { cpuMillis: entry.cpuMillis ?? size.cpuMillis, memoryMb: entry.memoryMb ?? size.memoryMb };
}

/**
 * Checks an autoscale rule completely; throws INVALID_ARGUMENT naming each bad field.
 */
export function validateAutoscaleRule(rule: AutoscaleRule | undefined, context: Pick<FormationContext, "types" | "maxReplicas">): AutoscaleRule {
  if (rule === undefined) throw invalidArguments([{ field: "rule", description: "is required" }]);
  const violations: FieldViolation[] = [];
  const typeProblem = processTypeProblem(rule.processType, context.types);
  if (typeProblem !== undefined) violations.push({ field: "rule.process_type", description: typeProblem });
  if (rule.minReplicas < 1 || rule.minReplicas > context.maxReplicas) {
    violations.push({ field: "rule.min_replicas", description: `must be between 1 and ${context.maxReplicas}, got ${rule.minReplicas}` });
  }
  if (rule.maxReplicas < Math.max(rule.minReplicas, 1) || rule.maxReplicas > context.maxReplicas) {
    violations.push({ field: "rule.max_replicas", description: `must be between min_replicas and ${context.maxReplicas}, got ${rule.maxReplicas}` });
  }
  if (rule.targetCpuPercent < 1 || rule.targetCpuPercent > 100) {
    violations.push({ field: "rule.target_cpu_percent", description: `must be between 1 and 100, got ${rule.targetCpuPercent}` });
  }
  if (violations.length > 0) throw invalidArguments(violations);
  return rule;
}
