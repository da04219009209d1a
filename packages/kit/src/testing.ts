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

/**
 * Polls `check` until it returns a value (not undefined), for states the
 * platform reaches asynchronously; an error thrown by `check` counts as "not
 * yet" and is reported if time runs out.
 */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Names against the RFC 1123 rules every hostname check of the platform
 * applies (`hostnameProblem`, and the router's custom domains on top of it):
 * each with the problem it must be refused for, or undefined when valid.
 */
export const RFC1123_HOSTNAME_CASES: readonly (readonly [string, RegExp | undefined])[] = [
  ["admin.example.com", undefined],
  ["example.com", undefined],
  ["a-b.c-d.example.co.uk", undefined],
  ["xn--bcher-kva.example", undefined],
  ["", /must not be empty/],
  ["localhost", /at least two labels/],
  ["foo.*.example.com", /only be the first label/],
  ["-bad.example.com", /label "-bad"/],
  ["bad-.example.com", /label "bad-"/],
  ["under_score.example.com", /label "under_score"/],
  ["double..dot.com", /empty labels/],
  [`${"a".repeat(64)}.example.com`, /longer than 63/],
  [`${"abcdefghi.".repeat(26)}com`, /at most 253/],
  ["10.0.0.1", /not an IP address/],
];
