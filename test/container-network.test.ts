// The local runtime's network on the whole platform (five services as
// processes, runc containers): netpol's trust lists, followed by the
// scheduler, decide which containers reach a tcp process at <app>-<process>.
import test from "ava";
import { resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import { TrustService } from "@berth/proto/api/v1/network";
import { runcUsable } from "@berth/scheduler";
import { eventually } from "@berth/kit/testing";
import { startPlatformProcesses } from "./support/platform.js";
import { browserLikeTransport, deployDirectory, publicApi } from "./support/public-api.js";

const ADMIN_TOKEN = "container-network-admin-token-0123456789";
const DEMO = resolve(import.meta.dirname, "../examples/demo");
const CALLER = resolve(import.meta.dirname, "fixtures/caller");
const usable = await runcUsable();
const rootTest = usable.usable ? test : test.skip;
if (!usable.usable) console.warn(`container network test skipped: ${usable.reason}`);

rootTest(
  "a tcp process answers at <app>-<process> to a trusted app's containers; an untrusted app of the team and another team's app are refused",
  async (t) => {
    const platform = await startPlatformProcesses({ BERTH_ADMIN_TOKEN: ADMIN_TOKEN, BERTH_ROUTER_HTTP_PORT: "0", BERTH_ROUTER_HTTPS_PORT: "0" });
    t.teardown(() => platform.stop());
    const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
    const teams: Record<string, ReturnType<typeof publicApi>> = {};
    const trust: Record<string, ReturnType<typeof createClient<typeof TrustService>>> = {};
    for (const team of ["acme", "globex"]) {
      await admin.teams.createTeam({ name: team });
      const { secret } = await admin.teams.createToken({ team, description: "container network" });
      teams[team] = publicApi(platform.urls.api, secret);
      trust[team] = createClient(TrustService, browserLikeTransport(platform.urls.api, secret));
    }
    const deploy = async (team: string, app: string, directory: string, procfile: string, config: Record<string, string> = {}) => {
      await teams[team]!.apps.createApp({ name: app });
      if (Object.keys(config).length > 0) await teams[team]!.apps.updateConfig({ app, set: config });
      await deployDirectory(teams[team]!, app, directory, procfile);
    };
    await deploy("acme", "shop", DEMO, "api-tcp: node api-tcp.js\n");
    await teams.acme!.formation.scale({ app: "shop", replicas: { "api-tcp": 2 } });
    for (const [team, app] of [
      ["acme", "client"],
      ["acme", "stranger"],
      ["globex", "foreign"],
    ] as const) {
      await deploy(team, app, CALLER, "caller: node caller.js\n", { TARGET: "shop-api-tcp:5000" });
      await teams[team]!.formation.scale({ app, replicas: { caller: 1 } });
    }
    // netpol hears of the apps from the scheduler's stream.
    await eventually(async () => trust.acme!.setTrust({ app: "shop", trustedApps: ["client"] }), "shop trusting client");
    const lastCall = async (team: string, app: string) => {
      const lines: string[] = [];
      for await (const { line } of teams[team]!.formation.streamLogs({ app, processType: "caller", tailLines: 5 })) lines.push(line!.text);
      return lines.filter((text) => /^(reached|refused): /.test(text)).at(-1);
    };
    t.is(
      await eventually(
        async () => ((await lastCall("acme", "client"))?.startsWith("reached") ? lastCall("acme", "client") : undefined),
        "client reaching shop-api-tcp",
        120_000,
      ),
      "reached: echo hi",
    );
    t.is(await eventually(() => lastCall("acme", "stranger"), "stranger calling", 60_000), "refused: ECONNREFUSED");
    t.is(await eventually(() => lastCall("globex", "foreign"), "foreign calling", 60_000), "refused: ECONNREFUSED");
  },
);
