/** What the plan needs to know about one live replica of a type. */
export interface PlannedReplica {
  name: string;
  index: number;
  /** Runs the type's desired release and restart generation. */
  current: boolean;
  ready: boolean;
  zone: string;
}

/** The desired state of one process type and its replicas that are not retiring. */
export interface TypePlanInput {
  desired: number;
  /** How many replicas may run above `desired` while old ones are replaced. */
  maxSurge: number;
  zones: readonly string[];
  replicas: readonly PlannedReplica[];
}

/** Why a replica is retired. */
export type RetireReason = "scaled-down" | "replaced";

/** What to do now for one type; running the plan again after it changes nothing more. */
export interface TypePlan {
  start: { index: number; zone: string }[];
  retire: { name: string; reason: RetireReason }[];
}

/** The surge allowed for a type of `desired` replicas: a percentage, at least one. */
export function maxSurgeFor(desired: number, percent: number): number {
  return Math.max(1, Math.ceil((desired * percent) / 100));
}

/**
 * Plans one step of a rolling update with no loss of capacity: new replicas
 * start within the surge; an old replica is retired only while the ready
 * replicas left still number at least `desired`, or when it is not ready
 * and a current replica stands in for it. Extra current replicas are retired,
 * the not-ready and highest-indexed first. Replicas of a type spread over
 * the zones, balancing the current ones.
 */
export function planRollingUpdate(input: TypePlanInput): TypePlan {
  const { desired } = input;
  const current = input.replicas.filter((replica) => replica.current);
  const old = input.replicas.filter((replica) => !replica.current);
  const retire: TypePlan["retire"] = [];

  const byRetirementOrder = [...current].sort((a, b) => Number(a.ready) - Number(b.ready) || b.index - a.index);
  const excess = byRetirementOrder.slice(0, Math.max(0, current.length - desired));
  for (const replica of excess) retire.push({ name: replica.name, reason: "scaled-down" });
  const kept = current.filter((replica) => !excess.includes(replica));

  const readyKept = kept.filter((replica) => replica.ready).length;
  const oldReady = old.filter((replica) => replica.ready).sort((a, b) => a.index - b.index);
  const oldNotReady = old.filter((replica) => !replica.ready);
  const spareReady = desired === 0 ? oldReady.length : readyKept + oldReady.length - desired;
  const retiredReady = oldReady.slice(0, Math.max(0, spareReady));
  for (const replica of retiredReady) retire.push({ name: replica.name, reason: "replaced" });
  const oldLeft = old.length - retiredReady.length;

  const room = desired + input.maxSurge - kept.length - oldLeft;
  const wanted = desired - kept.length;
  const startCount = oldLeft === 0 ? wanted : Math.min(wanted, Math.max(0, room));
  const start: TypePlan["start"] = [];
  const usedIndexes = new Set(kept.map((replica) => replica.index));
  const perZone = new Map(input.zones.map((zone) => [zone, kept.filter((replica) => replica.zone === zone).length]));
  for (let index = 0; start.length < Math.max(0, startCount); index += 1) {
    if (usedIndexes.has(index)) continue;
    const zone = [...perZone.entries()].sort((a, b) => a[1] - b[1])[0]?.[0] ?? "";
    perZone.set(zone, (perZone.get(zone) ?? 0) + 1);
    start.push({ index, zone });
  }

  // A not-ready old replica serves nothing: it goes as soon as there are more
  // replicas than desired without it.
  const surplus = kept.length + start.length + oldLeft - desired;
  for (const replica of oldNotReady.slice(0, Math.max(0, surplus))) retire.push({ name: replica.name, reason: "replaced" });
  return { start, retire };
}

/** True when the type runs exactly `desired` ready current replicas and nothing else. */
export function rollingUpdateDone(input: Pick<TypePlanInput, "desired" | "replicas">, retiringCount: number): boolean {
  const current = input.replicas.filter((replica) => replica.current);
  return retiringCount === 0 && current.length === input.desired && current.every((replica) => replica.ready) && input.replicas.length === current.length;
}
