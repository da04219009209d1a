/**
 * The smallest explicit resources a process may ask for: below them a
 * process cannot start Node (memory) or gets too few CPU shares to answer
 * its health checks. The API refuses less before calling the scheduler, and
 * the scheduler refuses it again for its other callers.
 */
export const MIN_CPU_MILLIS = 50;
export const MIN_MEMORY_MB = 32;
