import { StatusError } from "./status.js";

/** One parsed requirement of a label selector. */
export type LabelRequirement =
  | { key: string; operator: "exists" | "notExists" }
  | { key: string; operator: "equals" | "notEquals"; value: string }
  | { key: string; operator: "in" | "notIn"; values: string[] }
  | { key: string; operator: "greaterThan" | "lessThan"; value: number };

/** A parsed label selector: every requirement must hold. */
export type LabelSelector = LabelRequirement[];

type Token = { type: "word"; text: string } | { type: "op"; text: string };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (input.startsWith("==", i) || input.startsWith("!=", i)) {
      tokens.push({ type: "op", text: input.slice(i, i + 2) });
      i += 2;
    } else if ("=!(),<>".includes(c)) {
      tokens.push({ type: "op", text: c });
      i++;
    } else {
      const match = /^[^\s=!(),<>]+/.exec(input.slice(i))!;
      tokens.push({ type: "word", text: match[0] });
      i += match[0].length;
    }
  }
  return tokens;
}

function invalid(selector: string, why: string): StatusError {
  return new StatusError("BadRequest", `unable to parse requirement: ${why} in label selector ${JSON.stringify(selector)}`);
}

/**
 * Parses the `labelSelector` query parameter with the grammar of
 * k8s.io/apimachinery/pkg/labels: `k`, `!k`, `k=v`, `k==v`, `k!=v`,
 * `k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`, comma-separated.
 * Throws a BadRequest StatusError on a malformed selector.
 */
export function parseLabelSelector(selector: string): LabelSelector {
  const tokens = tokenize(selector);
  const requirements: LabelSelector = [];
  let i = 0;
  const next = () => tokens[i++];
  const word = (what: string) => {
    const token = next();
    if (token?.type !== "word") throw invalid(selector, `expected ${what}`);
    return token.text;
  };
  while (i < tokens.length) {
    if (tokens[i]?.text === "!" && tokens[i]?.type === "op") {
      i++;
      requirements.push({ key: word("key after '!'"), operator: "notExists" });
    } else {
      const key = word("key");
      const op = tokens[i];
      if (op === undefined || op.text === ",") {
        requirements.push({ key, operator: "exists" });
      } else if (op.type === "op" && (op.text === "=" || op.text === "==" || op.text === "!=")) {
        i++;
        const valueToken = tokens[i];
        // An empty value (`k=`) is legal and means the label's value is "".
        let value = "";
        if (valueToken?.type === "word") {
          value = valueToken.text;
          i++;
        }
        requirements.push({ key, operator: op.text === "!=" ? "notEquals" : "equals", value });
      } else if (op.type === "op" && (op.text === ">" || op.text === "<")) {
        i++;
        const value = Number(word("integer"));
        if (!Number.isInteger(value)) throw invalid(selector, `value for ${key} must be an integer`);
        requirements.push({ key, operator: op.text === ">" ? "greaterThan" : "lessThan", value });
      } else if (op.type === "word" && (op.text === "in" || op.text === "notin")) {
        i++;
        if (next()?.text !== "(") throw invalid(selector, `expected '(' after ${op.text}`);
        const values: string[] = [];
        for (;;) {
          const token = next();
          if (token === undefined) throw invalid(selector, "expected ')'");
          if (token.type === "word") values.push(token.text);
          else if (token.text === ")") break;
          else if (token.text !== ",") throw invalid(selector, `unexpected ${token.text}`);
        }
        requirements.push({ key, operator: op.text === "in" ? "in" : "notIn", values });
      } else {
        throw invalid(selector, `unexpected ${op.text} after ${key}`);
      }
    }
    const separator = next();
    if (separator !== undefined && separator.text !== ",") throw invalid(selector, `expected ',' but found ${separator.text}`);
  }
  return requirements;
}

/** Whether `labels` satisfy every requirement of `selector`. */
export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const all = labels ?? {};
  // biome-ignore lint/suspicious/useIterableCallbackReturn: the switch covers every operator, tsc checks it is exhaustive
  return selector.every((requirement) => {
    const present = Object.hasOwn(all, requirement.key);
    const value = all[requirement.key];
    switch (requirement.operator) {
      case "exists":
        return present;
      case "notExists":
        return !present;
      case "equals":
        return present && value === requirement.value;
      case "notEquals":
        return !present || value !== requirement.value;
      case "in":
        return present && requirement.values.includes(value!);
      case "notIn":
        return !present || !requirement.values.includes(value!);
      case "greaterThan":
        return present && Number.isInteger(Number(value)) && Number(value) > requirement.value;
      case "lessThan":
        return present && Number.isInteger(Number(value)) && Number(value) < requirement.value;
    }
  });
}

/** One parsed term of a field selector. */
export interface FieldRequirement {
  field: string;
  operator: "equals" | "notEquals";
  value: string;
}

/** Fields every kind supports in a field selector, plus the extra ones some kinds add. */
const selectableFields: Record<string, readonly string[]> = {
  "*": ["metadata.name", "metadata.namespace"],
  Pod: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP"],
  Secret: ["type"],
  Event: ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "reason", "type"],
};

/**
 * Parses the `fieldSelector` query parameter (`f=v`, `f==v`, `f!=v`, comma-separated).
 * Like a real server, a field the kind does not index is a BadRequest.
 */
export function parseFieldSelector(selector: string, kind: string): FieldRequirement[] {
  const allowed = [...selectableFields["*"]!, ...(selectableFields[kind] ?? [])];
  return selector
    .split(",")
    .filter((term) => term.trim() !== "")
    .map((term) => {
      const match = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(term);
      if (!match) throw new StatusError("BadRequest", `invalid selector: ${JSON.stringify(selector)}; can't understand ${JSON.stringify(term)}`);
      const [, field, op, value] = match;
      if (!allowed.includes(field!)) throw new StatusError("BadRequest", `field label not supported: ${field}`);
      return { field: field!, operator: op === "!=" ? "notEquals" : "equals", value: value! } satisfies FieldRequirement;
    });
}

/** Whether `object` satisfies every term of a parsed field selector. */
export function matchesFields(requirements: readonly FieldRequirement[], object: unknown): boolean {
  return requirements.every(({ field, operator, value }) => {
    let current: unknown = object;
    for (const part of field.split(".")) {
      current = current !== null && typeof current === "object" ? (current as Record<string, unknown>)[part] : undefined;
    }
    const actual = current === undefined || current === null ? "" : String(current);
    return operator === "equals" ? actual === value : actual !== value;
  });
}
