/** The well-known label keys berth puts on every Kubernetes object it manages. */
export const LABEL = {
  name: "app.kubernetes.io/name",
  instance: "app.kubernetes.io/instance",
  component: "app.kubernetes.io/component",
  partOf: "app.kubernetes.io/part-of",
  managedBy: "app.kubernetes.io/managed-by",
  version: "app.kubernetes.io/version",
  team: "berth.dev/team",
} as const;

/** What the standard labels of an object describe. */
export interface StandardLabelsInput {
  /** The berth app (app.kubernetes.io/name). */
  app: string;
  /** The part of the app, usually its process type (app.kubernetes.io/component). */
  component: string;
  /** The berth service that applies the object and prunes it (app.kubernetes.io/managed-by). */
  managedBy: string;
  /** The team owning the app (berth.dev/team). */
  team?: string;
  /** A unique name of this instance of the app, e.g. `<app>-<type>` (app.kubernetes.io/instance). */
  instance?: string;
  /** The release the object belongs to, e.g. `v3` (app.kubernetes.io/version). */
  version?: string;
}

/**
 * The labels of the Kubernetes recommended set (`app.kubernetes.io/*`, with
 * part-of `berth`) plus `berth.dev/team`; optional ones only when given, so a
 * label that is absent never changes an existing selector.
 */
export function standardLabels(input: StandardLabelsInput): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL.name]: input.app,
    ...(input.instance !== undefined ? { [LABEL.instance]: input.instance } : {}),
    [LABEL.component]: input.component,
    [LABEL.partOf]: "berth",
    [LABEL.managedBy]: input.managedBy,
    ...(input.version !== undefined ? { [LABEL.version]: input.version } : {}),
  };
  if (input.team !== undefined && input.team !== "") labels[LABEL.team] = input.team;
  return labels;
}

/** An equality-based label selector string (`a=1,b=2`) matching every label given. */
export function labelSelector(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}
