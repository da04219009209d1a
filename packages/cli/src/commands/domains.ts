import type { Command } from "../command.js";
import { certificateStateText } from "../display.js";

/** domains, domains:add, domains:remove. */
export const domainCommands: Command[] = [
  {
    name: "domains",
    summary: "list the app's public hostnames: platform URLs and custom domains",
    usage: "--app <app>",
    app: true,
    positionals: { min: 0, max: 0 },
    async run({ args, out, session, app }) {
      const { routes } = await (await session()).domains.listDomains({ app: app() });
      if (args.json) out.json(routes);
      else
        out.table(
          [
            { header: "hostname", value: (r) => r.hostname },
            { header: "process", value: (r) => r.processType },
            { header: "kind", value: (r) => (r.customDomain ? "custom" : "platform") },
            { header: "certificate", value: (r) => (r.certificate ? certificateStateText(r.certificate.state) : "-") },
            { header: "url", value: (r) => r.url },
          ],
          routes,
          "No public hostnames: the app has no web process yet.",
        );
    },
  },
  {
    name: "domains:add",
    summary: "attach a custom domain to a web process (default: web)",
    usage: "<hostname> [--process <type>] --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    options: { process: { type: "string", placeholder: "<type>", description: "the web process that serves it (web or *-web)" } },
    details: ["Example: berth domains:add admin.example.com --process admin-web --app shop"],
    async run({ args, out, session, app }) {
      const { route } = await (await session()).domains.addDomain({
        app: app(),
        processType: (args.options.process as string | undefined) ?? "web",
        hostname: args.positionals[0]!,
      });
      if (args.json) out.json(route);
      else
        out.line(
          `Added ${route?.hostname} to ${route?.processType}; certificate ${route?.certificate ? certificateStateText(route.certificate.state) : "pending"}`,
        );
    },
  },
  {
    name: "domains:remove",
    summary: "detach a custom domain",
    usage: "<hostname> --app <app>",
    app: true,
    positionals: { min: 1, max: 1 },
    async run({ args, out, session, app }) {
      await (await session()).domains.removeDomain({ app: app(), hostname: args.positionals[0]! });
      if (args.json) out.json({ removed: args.positionals[0] });
      else out.line(`Removed ${args.positionals[0]}`);
    },
  },
];
