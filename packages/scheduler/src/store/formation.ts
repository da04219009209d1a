import type { Queryable } from "@berth/kit";
import type { FormationEntry } from "../formation.js";

/** The last change the autoscaler made to a type, as stored. */
export interface AutoscaleDecisionRecord {
  time: string;
  fromReplicas: number;
  toReplicas: number;
  observedCpuPercent: number;
  reason: string;
}

/** A formation entry with the autoscaler's last decision. */
export interface FormationRecord extends FormationEntry {
  lastAutoscale: AutoscaleDecisionRecord | null;
}

/** An autoscale rule as stored. */
export interface AutoscaleRuleRecord {
  processType: string;
  minReplicas: number;
  maxReplicas: number;
  targetCpuPercent: number;
}

function toFormation(row: Record<string, any>): FormationRecord {
  return {
    processType: row.process_type,
    replicas: row.replicas,
    size: row.size,
    cpuMillis: row.cpu_millis,
    memoryMb: row.memory_mb,
    health: row.health,
    restartGeneration: row.restart_generation,
    restartedAt: row.restarted_at,
    lastAutoscale: row.last_autoscale,
  };
}

/** The app's formation, every type it ever had, by type name. */
export async function listFormation(q: Queryable, app: string): Promise<FormationRecord[]> {
  const { rows } = await q.query("SELECT * FROM formation WHERE app = $1 ORDER BY process_type", [app]);
  return rows.map(toFormation);
}

/** Adds a type with `replicas` unless the app already has it (its scale is remembered). */
export async function ensureFormationEntry(q: Queryable, app: string, processType: string, replicas: number, size: string): Promise<void> {
  await q.query("INSERT INTO formation (app, process_type, replicas, size) VALUES ($1, $2, $3, $4) ON CONFLICT (app, process_type) DO NOTHING", [
    app,
    processType,
    replicas,
    size,
  ]);
}

/** Stores a type's formation entry. */
export async function saveFormationEntry(q: Queryable, app: string, entry: FormationEntry): Promise<void> {
  await q.query(
    `UPDATE formation SET replicas = $3, size = $4, cpu_millis = $5, memory_mb = $6, health = $7, restart_generation = $8, restarted_at = $9
     WHERE app = $1 AND process_type = $2`,
    [
      app,
      entry.processType,
      entry.replicas,
      entry.size,
      entry.cpuMillis,
      entry.memoryMb,
      JSON.stringify(entry.health),
      entry.restartGeneration,
      entry.restartedAt ?? null,
    ],
  );
}

/** Records an autoscale decision and its new replica count. */
export async function recordAutoscale(q: Queryable, app: string, processType: string, decision: AutoscaleDecisionRecord): Promise<void> {
  await q.query("UPDATE formation SET replicas = $3, last_autoscale = $4 WHERE app = $1 AND process_type = $2", [
    app,
    processType,
    decision.toReplicas,
    JSON.stringify(decision),
  ]);
}

function toRule(row: Record<string, any>): AutoscaleRuleRecord {
  return { processType: row.process_type, minReplicas: row.min_replicas, maxReplicas: row.max_replicas, targetCpuPercent: row.target_cpu_percent };
}

/** The app's autoscale rules by type. */
export async function listAutoscaleRules(q: Queryable, app: string): Promise<AutoscaleRuleRecord[]> {
  const { rows } = await q.query("SELECT * FROM autoscale_rules WHERE app = $1 ORDER BY process_type", [app]);
  return rows.map(toRule);
}

/** Every app's autoscale rules, for the autoscaler. */
export async function listAllAutoscaleRules(q: Queryable): Promise<(AutoscaleRuleRecord & { app: string })[]> {
  const { rows } = await q.query("SELECT * FROM autoscale_rules ORDER BY app, process_type");
  return rows.map((row) => ({ app: row.app as string, ...toRule(row) }));
}

/** Sets or replaces a type's rule. */
export async function upsertAutoscaleRule(q: Queryable, app: string, rule: AutoscaleRuleRecord): Promise<void> {
  await q.query(
    `INSERT INTO autoscale_rules (app, process_type, min_replicas, max_replicas, target_cpu_percent) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (app, process_type) DO UPDATE SET min_replicas = $3, max_replicas = $4, target_cpu_percent = $5`,
    [app, rule.processType, rule.minReplicas, rule.maxReplicas, rule.targetCpuPercent],
  );
}

/** Removes a type's rule; false when it had none. */
export async function deleteAutoscaleRule(q: Queryable, app: string, processType: string): Promise<boolean> {
  const { rowCount } = await q.query("DELETE FROM autoscale_rules WHERE app = $1 AND process_type = $2", [app, processType]);
  return (rowCount ?? 0) > 0;
}
