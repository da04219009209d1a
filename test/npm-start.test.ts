// The README's first command, as a user runs it: `npm start` on a fresh data
// directory serves the demo app, refuses a second start on the same
// directory, and stops cleanly with the embedded cluster on Ctrl-C.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { RolloutState } from "@berth/proto/type/v1/release";
import { eventually } from "@berth/kit/testing";
import { freePort, platformEnvironment, removeContainerNetwork, waitServing } from "./support/platform.js";
import { deployDirectory, httpsGet, publicApi } from "./support/public-api.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const demo = join(root, "examples/demo");
const ADMIN_TOKEN = "npm-start-test-admin-token-0123456789";

/** `npm start` in its own process group, as a terminal runs it (Ctrl-C reaches the whole group). */
function npmStart(env: Record<string, string>): { child: ChildProcess; output: string[] } {
  const child = spawn("npm", ["start"], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const output: string[] = [];
  const keep = (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter(Boolean));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return { child, output };
}

function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("npm start serves the demo app, refuses a second start on its data directory, and stops cleanly with its database", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-npm-start-"));
  const { env, urls } = await platformEnvironment(dataDir);
  const httpsPort = await freePort();
  Object.assign(env, {
    BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
    BERTH_ROUTER_HTTP_PORT: String(await freePort()),
    BERTH_ROUTER_HTTPS_PORT: String(httpsPort),
  });
  const { child, output } = npmStart(env);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGKILL");
    await removeContainerNetwork(env);
    rmSync(dataDir, { recursive: true, force: true });
  });
  try {
    await waitServing(urls.api, child, 120_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${output.slice(-30).join("\n")}`);
  }

  // The demo app, deployed through the public API, serves over HTTPS through the router.
  const admin = publicApi(urls.api, ADMIN_TOKEN);
  await admin.teams.createTeam({ name: "acme" });
  const acme = publicApi(urls.api, (await admin.teams.createToken({ team: "acme", description: "npm start test" })).secret);
  await acme.apps.createApp({ name: "shop" });
  const deployed = await deployDirectory(acme, "shop", demo, readFileSync(join(demo, "Procfile"), "utf8"));
  t.is(deployed.rollout.state, RolloutState.SUCCEEDED, deployed.rollout.message);
  const ca = readFileSync(join(dataDir, "router", "platform-ca.pem"), "utf8");
  const served = await eventually(async () => {
    const response = await httpsGet(httpsPort, "shop.berth.localhost", "/", ca);
    return response.status === 200 ? JSON.parse(response.body) : undefined;
  }, "the demo app serves");
  t.like(served, { app: "shop", process: "web" });

  // A second `npm start` on the same data directory (on other ports) is refused, saying why.
  const second = npmStart({ ...(await platformEnvironment(dataDir)).env, BERTH_ROUTER_HTTP_PORT: "0", BERTH_ROUTER_HTTPS_PORT: "0" });
  const [secondCode] = await once(second.child, "exit");
  t.is(secondCode, 1);
  t.true(
    second.output.some((line) => /berth did not start: the scheduler service already runs on the data directory/.test(line)),
    second.output.slice(-10).join("\n"),
  );
  t.is((await httpsGet(httpsPort, "shop.berth.localhost", "/", ca)).status, 200, "the first platform still serves");

  // Ctrl-C: every service stops, and so does the embedded cluster.
  const postmaster = Number(readFileSync(join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
  process.kill(-child.pid!, "SIGINT");
  const [code, signal] = await once(child, "exit");
  // npm ends itself with the signal its script got once the script has exited; the platform exits 0.
  t.deepEqual([code, signal], [null, "SIGINT"], output.slice(-20).join("\n"));
  t.true(output.some((line) => line.includes('"message":"shutting down"')));
  t.false(
    output.some((line) => line.includes('"level":"error"')),
    output.filter((line) => line.includes('"level":"error"')).join("\n"),
  );
  await eventually(async () => (running(postmaster) ? undefined : true), "the embedded postmaster to exit", 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${output.filter((line) => /postgres|shutting|stopped|error|warn/.test(line)).join("\n")}`);
  });
  t.false(existsSync(join(dataDir, "postgres", "postmaster.pid")));
  t.true(output.some((line) => line.includes("embedded postgres stopped")));
});
