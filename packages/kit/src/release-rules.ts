/**
 * What a release may hold, checked by the API for its callers and by the
 * scheduler for its own: config var names and sizes, the description, the
 * Procfile.
 */

/** A config var's name: a shell variable name of at most 256 characters. */
const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;

/** The most bytes one config value may hold. */
export const MAX_CONFIG_VALUE_BYTES = 32 * 1024;
/** The longest release description. */
export const MAX_RELEASE_DESCRIPTION = 1000;
/**
 * The most bytes of an app's whole environment as `KEY=value` strings: well
 * under what exec allows, so a release never fails to start on it.
 */
export const MAX_ENVIRONMENT_BYTES = 256 * 1024;
/** The most config vars an app may hold. */
export const MAX_CONFIG_VARS = 1000;
/** The largest Procfile. */
export const MAX_PROCFILE_BYTES = 64 * 1024;

/** Config vars the platform sets itself on every replica: PORT and BERTH_*. */
export function reservedConfigKey(key: string): boolean {
  return key === "PORT" || key.startsWith("BERTH_");
}

/** The bytes `vars` take in a process's environment, as `KEY=value` strings. */
export function environmentBytes(vars: Record<string, string>): number {
  let bytes = 0;
  for (const [key, value] of Object.entries(vars)) bytes += Buffer.byteLength(key) + 1 + Buffer.byteLength(value);
  return bytes;
}

/** Why `key` cannot name a config var, or undefined when it can. */
export function configKeyProblem(key: string): string | undefined {
  if (!CONFIG_KEY.test(key)) return `"${key}" must be letters, digits and _, not starting with a digit`;
  if (reservedConfigKey(key)) return `"${key}" is set by the platform`;
  return undefined;
}

/** A git object name: 40 hex digits (SHA-1 repositories) or 64 (SHA-256 ones), lower case. */
const GIT_COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** Why `commit` cannot be a release's git commit, or undefined when it can (empty means none). */
export function gitCommitProblem(commit: string): string | undefined {
  if (commit === "" || GIT_COMMIT.test(commit)) return undefined;
  return "must be a full git commit id (40 or 64 lowercase hex digits)";
}
