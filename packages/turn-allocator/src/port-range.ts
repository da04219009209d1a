/** An inclusive range of UDP ports. */
export interface PortRange {
  first: number;
  last: number;
}

/** How many ports a range holds. */
export function rangeSize(range: PortRange): number {
  return range.last - range.first + 1;
}

/** True when the two ranges share at least one port. */
export function rangesOverlap(a: PortRange, b: PortRange): boolean {
  return a.first <= b.last && b.first <= a.last;
}

/** `40000-40999` as a range, or why it is not one. */
export function parsePortRange(text: string): PortRange | string {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  if (!match) return `must be "<first>-<last>", e.g. 40000-40999, got "${text}"`;
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (first < 1024 || last > 65535) return `must lie within 1024-65535, got "${text}"`;
  if (first > last) return `must not end before it starts, got "${text}"`;
  return { first, last };
}

/** `first-last`, as configured and shown to users. */
export function formatPortRange(range: PortRange): string {
  return `${range.first}-${range.last}`;
}
