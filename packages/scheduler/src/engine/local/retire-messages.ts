/**
 * A retirement event's message: the reason in parentheses when there is one. Rows retired
 * before the reason was recorded carry an empty one, which read as "stopped ()".
 */
export function retireMessage(what: string, reason: string): string {
  return reason ? `${what} (${reason})` : what;
}
