/** One recommendation the autoscaler made for a type, at a time. */
export interface Recommendation {
  atMs: number;
  replicas: number;
}

/** What the rule asks for and what was observed. */
export interface AutoscaleInput {
  currentReplicas: number;
  minReplicas: number;
  maxReplicas: number;
  targetCpuPercent: number;
  /** Average CPU use of the ready replicas, in percent of their size's CPU. */
  observedCpuPercent: number;
}

/** Within this ratio of the target nothing changes (as in Kubernetes' HPA), so noise does not flap replicas. */
const TOLERANCE = 0.1;

/** The replica count the CPU use asks for right now, clamped to the rule. */
export function recommendReplicas(input: AutoscaleInput): number {
  const ratio = input.observedCpuPercent / input.targetCpuPercent;
  const wanted = Math.abs(ratio - 1) <= TOLERANCE ? input.currentReplicas : Math.ceil(input.currentReplicas * ratio);
  return Math.min(Math.max(wanted, input.minReplicas), input.maxReplicas);
}

/**
 * Stabilises recommendations: it scales up to the lowest recommendation of
 * the up-window, and down to the highest of the down-window, and only once
 * the history (begun at `historySinceMs`) covers the whole window. Undefined
 * when nothing should change.
 */
export function stabilisedReplicas(
  history: readonly Recommendation[],
  currentReplicas: number,
  nowMs: number,
  windows: { scaleUpWindowMs: number; scaleDownWindowMs: number },
  historySinceMs: number,
): number | undefined {
  if (history.length === 0) return undefined;
  const newest = history.reduce((latest, entry) => (entry.atMs > latest.atMs ? entry : latest));
  // A window always holds the newest recommendation, however short it is.
  const within = (windowMs: number) => history.filter((entry) => entry === newest || entry.atMs >= nowMs - windowMs).map((entry) => entry.replicas);
  const covers = (windowMs: number) => windowMs === 0 || historySinceMs <= nowMs - windowMs;
  const up = Math.min(...within(windows.scaleUpWindowMs));
  if (up > currentReplicas && covers(windows.scaleUpWindowMs)) return up;
  const down = Math.max(...within(windows.scaleDownWindowMs));
  if (down < currentReplicas && covers(windows.scaleDownWindowMs)) return down;
  return undefined;
}
