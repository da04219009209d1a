// Where tests find their PostgreSQL and Redis: `npm test` starts private
// instances and passes their URLs in these variables; a test run by hand
// (`npx ava file`) without them uses the machine's own on their usual ports.

/** A PostgreSQL URL whose user may create schemas and databases. */
export const testDatabaseUrl = process.env.BERTH_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A Redis URL tests may write to (each test uses keys or prefixes of its own). */
export const testRedisUrl = process.env.BERTH_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** The URL of another database on the test PostgreSQL server. */
export function testDatabaseUrlFor(database: string): string {
  const url = new URL(testDatabaseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
