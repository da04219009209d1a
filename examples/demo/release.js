// The demo's release phase: runs once per deploy before the rollout.
// Config vars it understands:
//   RELEASE_MARKER     a file to which it appends one line per run (tests count the runs)
//   RELEASE_EXIT_CODE  exit with this code (non-zero fails the deploy)
//   RELEASE_SLEEP_MS   take this long
import { appendFileSync } from "node:fs";

const release = process.env.BERTH_RELEASE ?? "?";
console.log(`release phase of v${release}: migrating`);
const sleepMs = Number(process.env.RELEASE_SLEEP_MS ?? 0);

setTimeout(() => {
  if (process.env.RELEASE_MARKER) appendFileSync(process.env.RELEASE_MARKER, `v${release}\n`);
  const code = Number(process.env.RELEASE_EXIT_CODE ?? 0);
  if (code !== 0) console.error(`migration failed with code ${code}`);
  else console.log("migration done");
  process.exit(code);
}, sleepMs);
