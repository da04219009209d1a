import type { Queryable } from "@berth/kit";

/** A consumer of the endpoint stream as stored. */
export interface EndpointConsumerRecord {
  name: string;
  ackedGeneration: number;
  lastSeenAt: Date;
}

/** Adds one to the endpoint generation and returns it. */
export async function nextEndpointGeneration(q: Queryable): Promise<number> {
  const { rows } = await q.query("UPDATE endpoint_generation SET value = value + 1 RETURNING value");
  return Number(rows[0].value);
}

/** The current endpoint generation. */
export async function currentEndpointGeneration(q: Queryable): Promise<number> {
  const { rows } = await q.query("SELECT value FROM endpoint_generation");
  return Number(rows[0].value);
}

/** Every consumer seen before. */
export async function listEndpointConsumers(q: Queryable): Promise<EndpointConsumerRecord[]> {
  const { rows } = await q.query("SELECT * FROM endpoint_consumers ORDER BY name");
  return rows.map((row) => ({ name: row.name, ackedGeneration: Number(row.acked_generation), lastSeenAt: row.last_seen_at }));
}

/** Records a consumer's acknowledgement (and that it was seen now). */
export async function saveEndpointConsumer(q: Queryable, name: string, ackedGeneration: number): Promise<void> {
  await q.query(
    `INSERT INTO endpoint_consumers (name, acked_generation, last_seen_at) VALUES ($1, $2, now())
     ON CONFLICT (name) DO UPDATE SET acked_generation = GREATEST(endpoint_consumers.acked_generation, $2), last_seen_at = now()`,
    [name, ackedGeneration],
  );
}

/** Forgets a consumer that went away for good. */
export async function deleteEndpointConsumer(q: Queryable, name: string): Promise<void> {
  await q.query("DELETE FROM endpoint_consumers WHERE name = $1", [name]);
}
