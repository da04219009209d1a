import type { AppEntry, PolicyModel } from "./policy-model.js";

/** Apps the scheduler reported: upserts, deletions, and whether it is a full snapshot. */
export interface AppChanges {
  apps: readonly AppEntry[];
  deleted: readonly string[];
  /** Every app not in `apps` is gone. */
  snapshot: boolean;
}

/** An empty model. */
export function emptyModel(): PolicyModel {
  return { apps: new Map(), trust: new Map() };
}

/** `trust` without `app` on either side. */
function dropFromTrust(trust: Map<string, readonly string[]>, app: string): void {
  trust.delete(app);
  for (const [owner, list] of trust) {
    if (list.includes(app)) {
      const rest = list.filter((name) => name !== app);
      if (rest.length === 0) trust.delete(owner);
      else trust.set(owner, rest);
    }
  }
}

/**
 * The model after the scheduler's news, the same rules the store applies:
 * a deleted app leaves every trust list in both directions, and an app
 * whose creation time changed is a new app of an old name that inherits
 * no trust.
 */
export function withAppChanges(model: PolicyModel, changes: AppChanges): PolicyModel {
  const apps = new Map(changes.snapshot ? [] : model.apps);
  const trust = new Map(model.trust);
  const gone = new Set(changes.deleted);
  if (changes.snapshot) {
    const listed = new Set(changes.apps.map((app) => app.name));
    for (const name of model.apps.keys()) if (!listed.has(name)) gone.add(name);
  }
  for (const name of gone) {
    apps.delete(name);
    dropFromTrust(trust, name);
  }
  for (const app of changes.apps) {
    const known = model.apps.get(app.name);
    if (known && known.createdAtMs !== app.createdAtMs) dropFromTrust(trust, app.name);
    apps.set(app.name, app);
  }
  return { apps, trust };
}

/** The model with `app`'s trust list replaced by `trusted` (sorted, without duplicates). */
export function withTrustList(model: PolicyModel, app: string, trusted: readonly string[]): PolicyModel {
  const trust = new Map(model.trust);
  const list = [...new Set(trusted)].sort();
  if (list.length === 0) trust.delete(app);
  else trust.set(app, list);
  return { apps: model.apps, trust };
}

/** The model with `app` on no trust list and with an empty list of its own. */
export function withoutTrustOf(model: PolicyModel, app: string): PolicyModel {
  const trust = new Map(model.trust);
  dropFromTrust(trust, app);
  return { apps: model.apps, trust };
}

/** Whether two entries describe the same app the same way (field by field: processes read back from jsonb come with their keys reordered). */
export const sameApp = (a: AppEntry, b: AppEntry) =>
  a.team === b.team &&
  a.createdAtMs === b.createdAtMs &&
  a.processes.length === b.processes.length &&
  a.processes.every((process, index) => {
    const other = b.processes[index]!;
    return process.processType === other.processType && process.routingClass === other.routingClass && process.port === other.port;
  });

/** True when `changes` would leave `model` exactly as it is (a reconnect's snapshot usually does). */
export function changesNothing(model: PolicyModel, changes: AppChanges): boolean {
  if (changes.deleted.some((name) => model.apps.has(name))) return false;
  if (changes.snapshot && new Set(changes.apps.map((app) => app.name)).size !== model.apps.size) return false;
  return changes.apps.every((app) => {
    const known = model.apps.get(app.name);
    return known !== undefined && sameApp(known, app);
  });
}

/** The teams whose compiled policies may differ between two models: an app of theirs changed, came, went or has a new trust list. */
export function changedTeams(before: PolicyModel, after: PolicyModel): Set<string> {
  const teams = new Set<string>();
  for (const [name, app] of after.apps) {
    const old = before.apps.get(name);
    if (!old || !sameApp(old, app) || (before.trust.get(name) ?? []).join() !== (after.trust.get(name) ?? []).join()) teams.add(app.team);
  }
  for (const [name, app] of before.apps) if (!after.apps.has(name)) teams.add(app.team);
  return teams;
}
