import { dnsLabelProblem, routingClassOf } from "./process-names.js";
import type { RoutingClass } from "@berth/proto/type/v1/process";

/** One `<type>: <command>` line of a Procfile. */
export interface ProcessDefinitionLine {
  processType: string;
  command: string;
  routingClass: RoutingClass;
}

/** What parsing a Procfile gave: its process types, or every problem found, each naming its line. */
export type ParsedProcfile = { ok: true; processes: ProcessDefinitionLine[] } | { ok: false; problems: string[] };

/**
 * Parses a Procfile: one `<type>: <command>` per line, blank lines and
 * `#` comments ignored. Types are lowercase DNS labels and appear once.
 */
export function parseProcfile(text: string): ParsedProcfile {
  const processes: ProcessDefinitionLine[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const where = `line ${index + 1}`;
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    if (colon < 0) {
      problems.push(`${where}: expected "<type>: <command>", got "${line}"`);
      return;
    }
    const processType = line.slice(0, colon).trim();
    const command = line.slice(colon + 1).trim();
    const nameProblem = dnsLabelProblem(processType);
    if (nameProblem !== undefined) {
      problems.push(`${where}: process type "${processType}" ${nameProblem}`);
      return;
    }
    if (command === "") {
      problems.push(`${where}: process type "${processType}" has no command`);
      return;
    }
    if (processes.some((process) => process.processType === processType)) {
      problems.push(`${where}: process type "${processType}" is declared twice`);
      return;
    }
    processes.push({ processType, command, routingClass: routingClassOf(processType) });
  });
  if (problems.length > 0) return { ok: false, problems };
  if (processes.length === 0) return { ok: false, problems: ["declares no process type"] };
  return { ok: true, processes };
}
