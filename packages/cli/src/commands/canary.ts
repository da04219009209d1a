import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CanaryPolicySchema, Rollout } from "@berth/proto/type/v1/release";
import { canaryText } from "@berth/kit/contract";
import { parseCount } from "../arguments.js";
import type { Command, CommandContext, OptionSpec, ParsedArguments } from "../command.js";
import { UsageError } from "../exit-codes.js";
import { parseDuration } from "./processes.js";

/** The options of `deploy` that make its rollout a canary. */
export const CANARY_OPTIONS: Record<string, OptionSpec> = {
  canary: { type: "string", placeholder: "<percent>", description: "roll out as a canary: this share of each web type's requests first" },
  step: { type: "string", placeholder: "<percent>", description: "with --canary: added to the share after each healthy interval (default 10)" },
  interval: { type: "string", placeholder: "<d>", description: "with --canary: how long each share is measured, e.g. 30s (default 30s, at least 1s)" },
  "max-failure-rate": {
    type: "string",
    placeholder: "<percent>",
    description: "with --canary: the most requests of the canary that may fail in an interval, its own 5xx included (default 1)",
  },
};

type CanaryPolicyInit = MessageInitShape<typeof CanaryPolicySchema>;

/** The canary policy the deploy options ask for; undefined without --canary (a usage error when its other options come alone). */
export function canaryPolicyOf(args: ParsedArguments): CanaryPolicyInit | undefined {
  const { canary, step, interval } = args.options as Record<string, string | undefined>;
  const maxFailureRate = args.options["max-failure-rate"] as string | undefined;
  if (canary === undefined) {
    const stray = [step && "--step", interval && "--interval", maxFailureRate && "--max-failure-rate"].filter(Boolean);
    if (stray.length > 0) throw new UsageError(`${stray.join(", ")} go${stray.length === 1 ? "es" : ""} with --canary`);
    return undefined;
  }
  const policy: CanaryPolicyInit = { percent: parseCount("--canary", canary, 1, 100) };
  if (step !== undefined) policy.stepPercent = parseCount("--step", step, 1, 100);
  if (interval !== undefined) policy.intervalMs = parseDuration("interval", interval);
  if (maxFailureRate !== undefined) {
    const rate = Number(maxFailureRate);
    if (maxFailureRate.trim() === "" || !Number.isFinite(rate) || rate < 0 || rate > 100) {
      throw new UsageError(`--max-failure-rate must be a percentage from 0 to 100, got "${maxFailureRate}"`);
    }
    policy.maxFailureRate = rate;
  }
  return policy;
}

/** Prints a canary's rollout: its release, state and figures. */
function printCanary({ out, args }: CommandContext, rollout: Rollout | undefined): void {
  if (args.json) {
    out.json(rollout ?? {});
    return;
  }
  const canary = rollout?.canary;
  if (rollout === undefined || canary === undefined) return;
  out.line(`v${rollout.releaseVersion} over v${rollout.previousReleaseVersion} (${rollout.id}): ${canaryText(canary, rollout.releaseVersion)}`);
  if (canary.message) out.line(canary.message);
}

/** canary, canary:promote, canary:abort. */
export const canaryCommands: Command[] = [
  {
    name: "canary",
    summary: "show the app's canary under way, or its last one",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    details: ["Start one with berth deploy --canary <percent> [--step <percent>] [--interval <d>] [--max-failure-rate <percent>]."],
    async run(context) {
      const { rollout } = await (await context.session()).apps.getCanary({ app: context.app() });
      printCanary(context, rollout);
    },
  },
  {
    name: "canary:promote",
    summary: "send every request to the canary now; its rollout completes like any other",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run(context) {
      const { rollout } = await (await context.session()).apps.promoteCanary({ app: context.app() });
      printCanary(context, rollout);
    },
  },
  {
    name: "canary:abort",
    summary: "roll the canary back now: its replicas leave the endpoints, then stop",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run(context) {
      const { rollout } = await (await context.session()).apps.abortCanary({ app: context.app() });
      printCanary(context, rollout);
    },
  },
];
