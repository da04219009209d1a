import type { Command } from "../command.js";
import { ageText, timeText } from "../display.js";
import { UsageError } from "../exit-codes.js";

const DURATION = /^(\d+)(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90`, `90s`, `15m`, `1h` or `2d` in seconds; the API decides what is in bounds. */
export function parseTtl(text: string): number {
  const match = DURATION.exec(text.trim());
  if (!match) throw new UsageError(`rtc:credentials: --ttl must be a duration like 3600, 15m, 1h or 1d, got "${text}"`);
  return Number(match[1]) * UNIT_SECONDS[match[2] ?? "s"]!;
}

/** rtc, rtc:credentials, rtc:rotate. */
export const rtcCommands: Command[] = [
  {
    name: "rtc",
    summary: "show each *-rtc process's TURN gateway: hostname, UDP port, realm, replica hostnames, secret age",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { allocations } = await (await session()).rtc.listAllocations({ app: app() });
      if (args.json) out.json(allocations);
      else
        out.table(
          [
            { header: "process", value: (a) => a.processType },
            { header: "turn", value: (a) => `${a.exposure?.turnHostname}:${a.exposure?.port}` },
            { header: "realm", value: (a) => a.exposure?.realm ?? "-" },
            { header: "replica hostnames", value: (a) => a.exposure?.replicaHostnames.join(", ") || "-" },
            { header: "secret age", value: (a) => ageText(a.secretRotatedAt) },
            { header: "previous secret until", value: (a) => (a.previousSecretValidUntil ? timeText(a.previousSecretValidUntil) : "-") },
          ],
          allocations,
          "No rtc processes: name a process *-rtc in the Procfile and deploy.",
        );
    },
  },
  {
    name: "rtc:credentials",
    summary: "mint ephemeral TURN credentials: the iceServers JSON a browser passes to RTCPeerConnection",
    usage: "<type> [--ttl <duration>] [--user <id>] --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    options: {
      ttl: { type: "string", placeholder: "<duration>", description: "how long they stay valid: 3600, 15m, 1h (default: the platform's)" },
      user: { type: "string", placeholder: "<id>", description: "who they are for; part of the TURN username" },
    },
    details: ["Example: berth rtc:credentials sfu-rtc --ttl 1h --user alice --app shop"],
    async run({ args, out, session, app }) {
      const ttl = args.options.ttl as string | undefined;
      const { credentials } = await (await session()).rtc.getCredentials({
        app: app(),
        processType: args.positionals[0]!,
        user: (args.options.user as string | undefined) ?? "",
        ttlSeconds: ttl === undefined ? 0 : parseTtl(ttl),
      });
      // Always JSON: the output is meant to be pasted or piped into an RTCConfiguration.
      out.json(args.json ? credentials : { iceServers: credentials?.iceServers ?? [] });
    },
  },
  {
    name: "rtc:rotate",
    summary: "replace a *-rtc process's TURN secret; the previous one stays valid for the grace period",
    usage: "<type> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    details: ["Replicas are rolled so that they see the new TURN_SHARED_SECRET; live TURN allocations carry on."],
    async run({ args, out, session, app }) {
      const { allocation } = await (await session()).rtc.rotateSecret({ app: app(), processType: args.positionals[0]! });
      if (args.json) out.json(allocation);
      else
        out.line(`Rotated the TURN secret of ${allocation?.processType}; the previous one stays valid until ${timeText(allocation?.previousSecretValidUntil)}`);
    },
  },
];
