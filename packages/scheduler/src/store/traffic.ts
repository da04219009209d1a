import type { Queryable } from "@berth/kit";

/** The requests one release of one process type answered. */
export interface TrafficFiguresRecord {
  processType: string;
  releaseVersion: number;
  requests: number;
  failed: number;
  appErrors: number;
}

/** What the routers counted for an app during a window, per process type and release. */
export interface TrafficRecord {
  complete: boolean;
  byRelease: TrafficFiguresRecord[];
}

/** One router's report: the counts of requests that ended in [periodStart, periodEnd). */
export interface TrafficReport {
  consumer: string;
  periodStart: Date;
  periodEnd: Date;
  counts: (TrafficFiguresRecord & { app: string })[];
}

/** Stores a report and moves the router's reported-until mark. */
export async function insertTrafficReport(q: Queryable, report: TrafficReport): Promise<void> {
  if (report.counts.length > 0) {
    const columns = ["app", "process_type", "release_version", "requests", "failed", "app_errors"] as const;
    const rows = report.counts.map((count) => [count.app, count.processType, count.releaseVersion, count.requests, count.failed, count.appErrors]);
    const values = rows.map((_, row) => `($1, $2, $3, ${columns.map((__, column) => `$${4 + row * columns.length + column}`).join(", ")})`);
    await q.query(`INSERT INTO traffic_reports (consumer, period_start, period_end, ${columns.join(", ")}) VALUES ${values.join(", ")}`, [
      report.consumer,
      report.periodStart,
      report.periodEnd,
      ...rows.flat(),
    ]);
  }
  await q.query(
    `INSERT INTO traffic_consumers (name, reported_until) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET reported_until = GREATEST(traffic_consumers.reported_until, $2), last_report_at = now()`,
    [report.consumer, report.periodEnd],
  );
}

/**
 * The figures of `app` in the reports that overlap [from, to): a report
 * period is counted whole, so a window's figures are exact to the routers'
 * report interval.
 */
export async function trafficBetween(q: Queryable, app: string, from: Date, to: Date): Promise<TrafficFiguresRecord[]> {
  const { rows } = await q.query(
    `SELECT process_type, release_version, sum(requests)::bigint AS requests, sum(failed)::bigint AS failed, sum(app_errors)::bigint AS app_errors
     FROM traffic_reports WHERE app = $1 AND period_end > $2 AND period_start < $3
     GROUP BY process_type, release_version ORDER BY process_type, release_version`,
    [app, from, to],
  );
  return rows.map((row) => ({
    processType: row.process_type,
    releaseVersion: row.release_version,
    requests: Number(row.requests),
    failed: Number(row.failed),
    appErrors: Number(row.app_errors),
  }));
}

/** A finished rollout whose figures are not final yet. */
export interface UncountedRollout {
  id: string;
  app: string;
  startedAt: Date;
  finishedAt: Date;
}

/**
 * Finished rollouts whose figures may be made final: every router that
 * reported within `liveMs` has reported past the rollout's end, or the end
 * is more than `settleTimeoutMs` ago (a router that stopped reporting is not
 * waited for).
 */
export async function settledRollouts(q: Queryable, liveMs: number, settleTimeoutMs: number): Promise<UncountedRollout[]> {
  const { rows } = await q.query(
    `SELECT r.id, r.app, r.started_at, r.finished_at FROM rollouts r
     WHERE NOT r.traffic_counted AND r.finished_at IS NOT NULL
       AND (r.finished_at < now() - make_interval(secs => $2::double precision / 1000)
         OR NOT EXISTS (SELECT 1 FROM traffic_consumers c
                        WHERE c.last_report_at > now() - make_interval(secs => $1::double precision / 1000)
                          AND c.reported_until < r.finished_at))
     ORDER BY r.finished_at`,
    [liveMs, settleTimeoutMs],
  );
  return rows.map((row) => ({ id: row.id, app: row.app, startedAt: row.started_at, finishedAt: row.finished_at }));
}

/** Makes a rollout's figures final; false when another scheduler did it first. */
export async function setRolloutTraffic(q: Queryable, id: string, figures: TrafficFiguresRecord[]): Promise<boolean> {
  const { rowCount } = await q.query("UPDATE rollouts SET traffic = $2, traffic_counted = true WHERE id = $1 AND NOT traffic_counted", [
    id,
    JSON.stringify(figures),
  ]);
  return rowCount === 1;
}

/** The final figures of the rollout that brought each release of `app` in (releases rolled out before the routers counted have none). */
export async function releaseRolloutTraffic(q: Queryable, app: string): Promise<Map<number, TrafficFiguresRecord[]>> {
  const { rows } = await q.query(
    `SELECT DISTINCT ON (release_version) release_version, traffic FROM rollouts
     WHERE app = $1 AND process_types = '[]'::jsonb AND traffic IS NOT NULL
     ORDER BY release_version, started_at DESC`,
    [app],
  );
  return new Map(rows.map((row) => [row.release_version as number, row.traffic as TrafficFiguresRecord[]]));
}

/** Forgets reports older than `before` (finished rollouts keep their final figures). */
export async function pruneTrafficReports(q: Queryable, before: Date): Promise<void> {
  await q.query("DELETE FROM traffic_reports WHERE period_end < $1", [before]);
}

/** Whether every router that reported within `liveMs` has reported past `at`: the figures up to `at` are complete. */
export async function routersReportedPast(q: Queryable, at: Date, liveMs: number): Promise<boolean> {
  const { rows } = await q.query(
    `SELECT NOT EXISTS (SELECT 1 FROM traffic_consumers
       WHERE last_report_at > now() - make_interval(secs => $2::double precision / 1000) AND reported_until < $1) AS done`,
    [at, liveMs],
  );
  return rows[0].done === true;
}
