import { dnsLabelProblem } from "@berth/kit";

/** One `<type>: <command>` line. */
export interface ProcfileEntry {
  processType: string;
  command: string;
}

/** The entries of a Procfile, or every problem found, each naming its line. */
export type ProcfileCheck = { ok: true; entries: ProcfileEntry[] } | { ok: false; problems: string[] };

/**
 * Checks a Procfile the way the scheduler reads it (one `<type>: <command>`
 * per line, blank lines and `#` comments ignored, types are DNS labels
 * declared once), so that the CLI refuses it before uploading and the API
 * before calling any service.
 */
export function checkProcfile(text: string): ProcfileCheck {
  const entries: ProcfileEntry[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `line ${index + 1}`;
    const colon = line.indexOf(":");
    if (colon < 0) {
      problems.push(`${where}: expected "<type>: <command>", got "${line}"`);
      return;
    }
    const processType = line.slice(0, colon).trim();
    const command = line.slice(colon + 1).trim();
    const nameProblem = dnsLabelProblem(processType);
    if (nameProblem !== undefined) problems.push(`${where}: process type "${processType}" ${nameProblem}`);
    else if (command === "") problems.push(`${where}: process type "${processType}" has no command`);
    else if (entries.some((entry) => entry.processType === processType)) problems.push(`${where}: process type "${processType}" is declared twice`);
    else entries.push({ processType, command });
  });
  if (problems.length > 0) return { ok: false, problems };
  if (entries.length === 0) return { ok: false, problems: ["declares no process type"] };
  return { ok: true, entries };
}
