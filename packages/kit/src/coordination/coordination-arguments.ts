import { invalidArgument } from "../errors.js";

/** Refuses an empty name, holder, key or stream with INVALID_ARGUMENT naming the field. */
export function requireNonEmpty(field: string, value: string): void {
  if (typeof value !== "string" || value.length === 0) throw invalidArgument(field, "must be a non-empty string");
}

/** Refuses anything but a positive whole number (ttls, windows, limits). */
export function requirePositiveInteger(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw invalidArgument(field, "must be a positive whole number");
}

/** Checks the arguments shared by every lease operation. */
export function checkLeaseArguments(name: string, holder: string, ttlMs?: number): void {
  requireNonEmpty("name", name);
  requireNonEmpty("holder", holder);
  if (ttlMs !== undefined) requirePositiveInteger("ttlMs", ttlMs);
}

/** Checks the arguments of RateLimits.take. */
export function checkRateLimitArguments(key: string, limit: number, windowMs: number): void {
  requireNonEmpty("key", key);
  requirePositiveInteger("limit", limit);
  requirePositiveInteger("windowMs", windowMs);
}
