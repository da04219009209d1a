import { dnsLabelProblem, invalidArguments, rtcProcessProblem, turnUserProblem } from "@berth/kit";
import type { FieldViolation } from "@berth/kit";

/** The problems of one request, refused together with every field named. */
export class RequestChecks {
  private readonly violations: FieldViolation[] = [];

  add(field: string, description: string): this {
    this.violations.push({ field, description });
    return this;
  }

  /** An app or team name. */
  name(field: string, value: string): this {
    const problem = dnsLabelProblem(value);
    return problem === undefined ? this : this.add(field, problem);
  }

  /** A `*-rtc` process type. */
  rtcProcess(field: string, value: string): this {
    const problem = rtcProcessProblem(value);
    return problem === undefined ? this : this.add(field, problem);
  }

  /** An integer within [min, max]. */
  within(field: string, value: number, min: number, max: number): this {
    return value >= min && value <= max ? this : this.add(field, `must be between ${min} and ${max}, got ${value}`);
  }

  /** The user part of a TURN username: empty, or 1-128 characters that cannot break the `<expiry>:<user>` form. */
  turnUser(field: string, value: string): this {
    const problem = turnUserProblem(value);
    return problem === undefined ? this : this.add(field, problem);
  }

  /** Throws INVALID_ARGUMENT naming every problem, if any. */
  throwIfAny(): void {
    if (this.violations.length > 0) throw invalidArguments(this.violations);
  }
}
