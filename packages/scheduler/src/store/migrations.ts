import type { Migration } from "@berth/kit";

/** The scheduler's schema, in order. Applied migrations never change. */
export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: "apps, releases, formation, autoscale, replicas, rollouts, uploads, request ids",
    sql: `
CREATE TABLE apps (
  name text PRIMARY KEY,
  team text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  current_release_version integer NOT NULL DEFAULT 0,
  latest_release_version integer NOT NULL DEFAULT 0,
  config jsonb NOT NULL DEFAULT '{}',
  deleting boolean NOT NULL DEFAULT false
);
CREATE INDEX apps_team ON apps (team);

CREATE TABLE releases (
  app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
  version integer NOT NULL,
  artifact jsonb NOT NULL,
  source_dir text NOT NULL DEFAULT '',
  processes jsonb NOT NULL,
  config jsonb NOT NULL,
  formation jsonb NOT NULL,
  description text NOT NULL DEFAULT '',
  status text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  rollback_of_version integer NOT NULL DEFAULT 0,
  failure_reason text NOT NULL DEFAULT '',
  failure_message text NOT NULL DEFAULT '',
  failure_log jsonb NOT NULL DEFAULT '[]',
  -- none (no release command), pending, running, succeeded, failed
  release_phase text NOT NULL,
  release_task_id text NOT NULL DEFAULT '',
  release_task_deadline timestamptz,
  PRIMARY KEY (app, version)
);

CREATE TABLE formation (
  app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
  process_type text NOT NULL,
  replicas integer NOT NULL,
  size text NOT NULL,
  cpu_millis integer,
  memory_mb integer,
  health jsonb NOT NULL DEFAULT '{}',
  restart_generation integer NOT NULL DEFAULT 0,
  last_autoscale jsonb,
  PRIMARY KEY (app, process_type)
);

CREATE TABLE autoscale_rules (
  app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
  process_type text NOT NULL,
  min_replicas integer NOT NULL,
  max_replicas integer NOT NULL,
  target_cpu_percent integer NOT NULL,
  PRIMARY KEY (app, process_type)
);

CREATE TABLE replicas (
  name text PRIMARY KEY,
  app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
  process_type text NOT NULL,
  replica_index integer NOT NULL,
  release_version integer NOT NULL,
  restart_generation integer NOT NULL,
  state text NOT NULL,
  ready boolean NOT NULL DEFAULT false,
  restarts integer NOT NULL DEFAULT 0,
  started_at timestamptz,
  zone text NOT NULL DEFAULT '',
  host text NOT NULL DEFAULT '',
  port integer NOT NULL DEFAULT 0,
  runtime_id text NOT NULL DEFAULT '',
  -- '' while serving; then unrouted, draining, stopping
  retire_phase text NOT NULL DEFAULT '',
  retire_reason text NOT NULL DEFAULT '',
  retire_generation bigint NOT NULL DEFAULT 0,
  retire_phase_since timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replicas_app ON replicas (app);

CREATE TABLE rollouts (
  id text PRIMARY KEY,
  app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
  release_version integer NOT NULL,
  previous_release_version integer NOT NULL,
  state text NOT NULL,
  reason text NOT NULL DEFAULT '',
  message text NOT NULL DEFAULT '',
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  process_types jsonb NOT NULL DEFAULT '[]',
  progress_deadline_at timestamptz,
  last_sequence integer NOT NULL DEFAULT 0
);
CREATE INDEX rollouts_app ON rollouts (app, started_at DESC);
-- One rollout per app at a time.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (app) WHERE finished_at IS NULL;

CREATE TABLE rollout_events (
  rollout_id text NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
  sequence integer NOT NULL,
  time timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  process_type text NOT NULL DEFAULT '',
  replica text NOT NULL DEFAULT '',
  message text NOT NULL DEFAULT '',
  reason text NOT NULL DEFAULT '',
  log_tail jsonb NOT NULL DEFAULT '[]',
  PRIMARY KEY (rollout_id, sequence)
);

CREATE TABLE source_uploads (
  id text PRIMARY KEY,
  app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
  size_bytes bigint NOT NULL,
  sha256 text NOT NULL,
  received_bytes bigint NOT NULL DEFAULT 0,
  complete boolean NOT NULL DEFAULT false,
  source_dir text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE request_ids (
  scope text NOT NULL,
  request_id text NOT NULL,
  response bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, request_id)
);

CREATE TABLE endpoint_generation (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  value bigint NOT NULL
);
INSERT INTO endpoint_generation (value) VALUES (0);

-- Consumers of the endpoint stream, kept so that after a restart the
-- scheduler still waits (up to the consumer timeout) for those that were
-- connected before it went down.
CREATE TABLE endpoint_consumers (
  name text PRIMARY KEY,
  acked_generation bigint NOT NULL DEFAULT 0,
  last_seen_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    id: 2,
    name: "replicas: isolation and last exit reason",
    sql: `
ALTER TABLE replicas ADD COLUMN isolation text NOT NULL DEFAULT '';
ALTER TABLE replicas ADD COLUMN last_exit_reason text NOT NULL DEFAULT '';
`,
  },
  {
    id: 3,
    name: "request ids remember the fingerprint of their request",
    sql: `
-- A reused request id with a different request is refused; ids remembered
-- before this have no fingerprint and are forgotten.
DELETE FROM request_ids;
ALTER TABLE request_ids ADD COLUMN fingerprint text NOT NULL;
CREATE INDEX request_ids_created_at ON request_ids (created_at);
`,
  },
  {
    id: 4,
    name: "replicas: the rtc route token of their per-replica hostname",
    sql: `
ALTER TABLE replicas ADD COLUMN rtc_route_token text NOT NULL DEFAULT '';
`,
  },
  {
    id: 5,
    name: "traffic counted by the routers, per rollout",
    sql: `
-- What each router answered per app, process type and release in one report period.
CREATE TABLE traffic_reports (
  consumer text NOT NULL,
  app text NOT NULL,
  process_type text NOT NULL,
  release_version integer NOT NULL,
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  requests bigint NOT NULL,
  failed bigint NOT NULL,
  app_errors bigint NOT NULL
);
CREATE INDEX traffic_reports_app ON traffic_reports (app, period_end);
CREATE INDEX traffic_reports_period_end ON traffic_reports (period_end);
-- Until when each router has reported: a rollout's figures are complete once every live router reported past its end.
CREATE TABLE traffic_consumers (
  name text PRIMARY KEY,
  reported_until timestamptz NOT NULL,
  last_report_at timestamptz NOT NULL DEFAULT now()
);
-- The final figures, set once the routers' reports cover the rollout's end.
ALTER TABLE rollouts ADD COLUMN traffic jsonb;
ALTER TABLE rollouts ADD COLUMN traffic_counted boolean NOT NULL DEFAULT false;
-- Rollouts from before the routers counted have no figures to wait for.
UPDATE rollouts SET traffic_counted = true WHERE finished_at IS NOT NULL;
CREATE INDEX rollouts_uncounted ON rollouts (finished_at) WHERE NOT traffic_counted;
`,
  },
  {
    id: 6,
    name: "releases: the build of their source",
    sql: `
-- none (nothing to build), pending, running, succeeded, failed
ALTER TABLE releases ADD COLUMN build_phase text NOT NULL DEFAULT 'none';
`,
  },
  {
    id: 7,
    name: "formation: when ps:restart last restarted a type",
    sql: `
ALTER TABLE formation ADD COLUMN restarted_at timestamptz;
`,
  },
  {
    id: 8,
    name: "source uploads: when they were last touched",
    sql: `
-- An upload untouched for the upload TTL is abandoned and expires.
ALTER TABLE source_uploads ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX source_uploads_updated_at ON source_uploads (updated_at);
`,
  },
  {
    id: 9,
    name: "rollouts: the canary a rollout began as",
    sql: `
-- Its policy, share, current step and outcome (see store/canary.ts): a restarted scheduler resumes it.
ALTER TABLE rollouts ADD COLUMN canary jsonb;
`,
  },
  {
    id: 10,
    name: "rollouts: whether a canary's figures cover its whole window",
    sql: `
-- Canaries that ended before this have no end time to count to: their figures stay as saved.
UPDATE rollouts SET canary = canary || jsonb_build_object(
  'endedAt', 0,
  'trafficState', CASE WHEN canary->>'state' IN ('promoted', 'aborted') THEN 'partial' ELSE 'counting' END)
WHERE canary IS NOT NULL;
CREATE INDEX rollouts_canary_counting ON rollouts (id) WHERE canary->>'trafficState' = 'counting';
`,
  },
];
