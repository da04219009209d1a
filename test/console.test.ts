// The web console in headless Chromium against the whole platform (five
// services as separate processes): what a team does in the browser, with a
// deploy from the CLI in the background showing up live.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import anyTest from "ava";
import type { TestFn } from "ava";
import { chromium } from "playwright-core";
import type { Browser, Page, Request } from "playwright-core";
import { AppService } from "@berth/proto/api/v1/apps";
import { FormationService } from "@berth/proto/api/v1/formation";
import { TeamService } from "@berth/proto/api/v1/identity";
import { DomainService, RtcService, TrustService } from "@berth/proto/api/v1/network";
import { freePort, startPlatformProcesses } from "./support/platform.js";
import type { PlatformProcesses } from "./support/platform.js";
import { publicApi } from "./support/public-api.js";
import type { PublicApi } from "./support/public-api.js";

// What the functions handed to page.evaluate see: the browser's globals (this program is typed for Node).
declare const document: any;
declare const window: any;
declare const sessionStorage: any;
declare const performance: any;

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const demo = join(root, "examples/demo");
const ADMIN_TOKEN = "console-test-admin-token-0123456789";
/** Where the screenshots of the main pages go. */
export const SCREENSHOTS = join(root, "test-output", "console");

// The page's own files, and the RPCs of the public services through the generated clients: nothing else.
const PAGE_FILES = new Set(["/", "/console.js", "/console.css"]);
const RPC_PATHS = new Set(
  [AppService, FormationService, TeamService, DomainService, RtcService, TrustService].flatMap((service) =>
    service.methods.map((method) => `/${service.typeName}/${method.name}`),
  ),
);

interface Context {
  platform: PlatformProcesses;
  browser: Browser;
  admin: PublicApi;
  tokens: { acme: string; globex: string; globexId: string };
  /** Every request a page made that was neither a page file nor a public RPC. */
  strayRequests: string[];
  /** The token appeared in a URL or the browser console. */
  leaks: string[];
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const platform = await startPlatformProcesses({
    BERTH_ADMIN_TOKEN: ADMIN_TOKEN,
    BERTH_ROUTER_HTTP_PORT: String(await freePort()),
    BERTH_ROUTER_HTTPS_PORT: String(await freePort()),
    BERTH_SCHEDULER_DRAIN_TIMEOUT_MS: "1000",
    BERTH_SCHEDULER_STOP_GRACE_MS: "2000",
  });
  const admin = publicApi(platform.urls.api, ADMIN_TOKEN);
  const tokens = { acme: "", globex: "", globexId: "" };
  for (const team of ["acme", "globex"] as const) {
    await admin.teams.createTeam({ name: team });
    const created = await admin.teams.createToken({ team, description: "console test" });
    tokens[team] = created.secret;
    if (team === "globex") tokens.globexId = created.token!.id;
  }
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  t.context = { platform, browser, admin, tokens, strayRequests: [], leaks: [] };
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  await t.context.platform?.stop();
});

/** A fresh browser context (its own session storage) whose requests and console are watched. */
async function openPage(t: { context: Context }, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await t.context.browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const origin = new URL(t.context.platform.urls.api).origin;
  const secrets = [t.context.tokens.acme, t.context.tokens.globex];
  page.on("request", (request: Request) => {
    const url = new URL(request.url());
    if (secrets.some((secret) => request.url().includes(secret))) t.context.leaks.push(`url: ${request.url()}`);
    if (url.protocol === "data:") return;
    const allowed =
      url.origin === origin &&
      ((request.method() === "GET" && PAGE_FILES.has(url.pathname) && url.search === "") || (request.method() === "POST" && RPC_PATHS.has(url.pathname)));
    if (!allowed) t.context.strayRequests.push(`${request.method()} ${request.url()}`);
  });
  page.on("console", (message) => {
    if (secrets.some((secret) => message.text().includes(secret))) t.context.leaks.push(`console: ${message.text()}`);
  });
  await page.goto(`${origin}/`);
  return page;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel("Team token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "Sign out", exact: true }).waitFor();
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

/** Runs the berth CLI as acme, as a separate process. */
function berthCli(t: { context: Context }, args: string[]) {
  return run(process.execPath, [join(root, "packages/cli/bin/berth.js"), ...args], {
    cwd: root,
    env: { ...process.env, BERTH_API_URL: t.context.platform.urls.api, BERTH_TOKEN: t.context.tokens.acme, BERTH_CONFIG_DIR: t.context.platform.dataDir },
    timeout: 240_000,
  });
}

/** Waits until `text` is in the element matched by `selector`. */
async function waitForText(page: Page, selector: string, text: string | RegExp): Promise<void> {
  const pattern = typeof text === "string" ? text : text.source;
  try {
    await page.waitForFunction(
      ([css, source, isRegExp]) => {
        const content = document.querySelector(css)?.textContent ?? "";
        return isRegExp ? new RegExp(source).test(content) : content.includes(source);
      },
      [selector, pattern, typeof text !== "string"] as const,
    );
  } catch (error) {
    // What the page showed instead, for the failure report.
    await shot(page, `failed-${selector.replace(/[^a-z0-9]+/gi, "-")}`);
    const shown = await page.evaluate((css) => document.querySelector(css)?.textContent ?? "(no such element)", selector);
    const alerts = await page.evaluate(() => [...document.querySelectorAll('[role="alert"]')].map((alert: any) => alert.textContent).join(" | "));
    throw new Error(`${selector} never showed ${String(text)}; it shows: ${shown}${alerts ? `; the page's errors: ${alerts}` : ""}`, { cause: error });
  }
}

test.serial(
  "a team signs in, creates an app, watches a CLI deploy roll out live, scales it, follows logs, sets config, rolls back, adds a domain and signs out",
  async (t) => {
    const page = await openPage(t);
    const timing = await page.evaluate(() => {
      const [navigation] = performance.getEntriesByType("navigation");
      return { loadMs: Math.round(navigation!.loadEventEnd), bytes: navigation!.transferSize };
    });
    t.log(`page load on loopback: ${timing.loadMs} ms`);
    await shot(page, "sign-in");

    // A wrong token is refused on the sign-in page, keyboard only.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    await page.keyboard.type("not-a-real-token");
    await page.keyboard.press("Enter");
    await waitForText(page, ".error", "Unauthenticated: the token is unknown or revoked");

    await signIn(page, t.context.tokens.acme);
    t.is(await page.evaluate(() => sessionStorage.getItem("berth.token")), t.context.tokens.acme);
    t.false(page.url().includes(t.context.tokens.acme));

    // A bad app name shows the field the API refused.
    await page.getByLabel("New app", { exact: true }).fill("Not_A_Name");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.locator('.error [data-field="name"]').waitFor();
    await shot(page, "field-error");

    await page.getByLabel("New app", { exact: true }).fill("shop");
    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.waitForURL(/#\/apps\/shop$/);
    await page.getByText("no release yet").waitFor();

    // Deploy from the CLI in the background: the rollout's steps stream into the open page.
    const berth = (args: string[]) => berthCli(t, args);
    let cliDone = false;
    const deploy = berth(["deploy", demo, "--app", "shop"]).finally(() => (cliDone = true));
    await page.locator('[data-testid="rollout-steps"] li').first().waitFor();
    t.false(cliDone, "the first rollout step showed while the CLI was still deploying");
    await waitForText(page, '[data-testid="rollout-state"]', "succeeded");
    t.regex((await deploy).stdout + (await deploy).stderr, /succeeded/i);
    t.true(await page.locator('[data-kind="RELEASE_PHASE_SUCCEEDED"]').isVisible());
    await waitForText(page, '[data-testid="ready-web"]', "1/1");
    await shot(page, "app-rollout");

    // Scale web from the page; the replicas follow.
    await page.getByLabel("Replicas of web", { exact: true }).fill("2");
    await page.getByRole("form", { name: "Scale web" }).getByRole("button", { name: "Scale", exact: true }).click();
    await waitForText(page, '[data-testid="ready-web"]', "2/2");
    await page.waitForFunction(() => document.querySelectorAll('#replicas tr[data-type="web"]').length === 2);
    const zones = await page.locator('#replicas tr[data-type="web"] td:nth-child(4)').allTextContents();
    t.is(new Set(zones).size, 2, `two web replicas in two zones: ${zones.join(", ")}`);

    // Too many replicas: the refusal names the field and why.
    await page.getByLabel("Replicas of web", { exact: true }).fill("100000");
    await page.getByRole("form", { name: "Scale web" }).getByRole("button", { name: "Scale", exact: true }).click();
    await waitForText(page, "#formation .error [data-field]", "must be between 0 and 100, got 100000");

    // Logs: the tail, then lines as they come, filtered by type.
    await page.getByRole("link", { name: "Logs", exact: true }).click();
    await waitForText(page, '[data-testid="log-lines"]', "web listening on");
    await page.getByLabel("Type", { exact: true }).selectOption("worker");
    await berth(["pods:scale", "worker=1", "--app", "shop"]);
    await waitForText(page, '[data-testid="log-lines"]', /worker finished job \d+/);
    t.false((await page.locator('[data-testid="log-lines"]').textContent())!.includes("web listening on"), "only the worker's lines");
    await page.getByRole("button", { name: "Pause", exact: true }).click();
    await waitForText(page, '[data-testid="log-status"]', "new lines held");
    const whilePaused = await page.locator('[data-testid="log-lines"] .line').count();
    await page.getByRole("button", { name: "Resume", exact: true }).click();
    await page.waitForFunction((before) => document.querySelectorAll('[data-testid="log-lines"] .line').length > before, whilePaused);
    await shot(page, "logs");

    // Config: set a var (a new release rolls out), its value hidden until revealed. The
    // releases' first read fails for a moment: the table is read again, not left empty.
    let refusedReads = 0;
    await page.route(
      `**/${AppService.typeName}/ListReleases`,
      (route) => {
        refusedReads += 1;
        return route.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ code: "unavailable", message: "refused by the test" }) });
      },
      { times: 1 },
    );
    await page.getByRole("link", { name: "Releases & config", exact: true }).click();
    await page.locator('#releases tr[data-version="1"]').waitFor();
    t.is(refusedReads, 1);
    await page.getByLabel("Name", { exact: true }).fill("GREETING");
    await page.getByLabel("Value", { exact: true }).fill("hello from the console");
    await page.getByRole("button", { name: "Set", exact: true }).click();
    await page.locator('#config tr[data-key="GREETING"]').waitFor();
    t.false((await page.locator("#config").textContent())!.includes("hello from the console"), "hidden until revealed");
    await page.getByRole("button", { name: "Reveal GREETING", exact: true }).click();
    await waitForText(page, "#config", "hello from the console");
    await page.locator('#releases tr[data-version="2"]').waitFor();
    await waitForText(page, '#releases tr[data-version="2"]', "succeeded");

    // Roll back to v1: v3 appears as the rollback of v1.
    await page.getByRole("button", { name: "Roll back to v1", exact: true }).click();
    await waitForText(page, '#releases tr[data-version="3"]', "rollback to v1");
    await waitForText(page, '#releases tr[data-version="3"]', "succeeded");
    await shot(page, "releases");

    // Domains: a bad hostname names the field; a good one is listed with its certificate state.
    await page.getByRole("link", { name: "Domains", exact: true }).click();
    await page.getByLabel("Custom domain", { exact: true }).fill("-bad-.example.com");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.locator('.error [data-field="hostname"]').waitFor();
    await page.getByLabel("Custom domain", { exact: true }).fill("shop.example.com");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.locator('#domains tr[data-hostname="shop.example.com"]').waitFor();
    await shot(page, "domains");

    // Network: the app's trust list (it has a tcp process).
    await page.getByRole("link", { name: "Network", exact: true }).click();
    await waitForText(page, "#trust", "Nobody: only the app itself reaches its tcp processes.");
    await shot(page, "network");

    // The apps page shows the app live with its release and URL; on a phone too.
    await page.getByRole("link", { name: "berth", exact: true }).click();
    await waitForText(page, 'tr[data-app="shop"]', "v3");
    await waitForText(page, 'tr[data-app="shop"]', "https://shop.berth.localhost");
    await shot(page, "apps");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${new URL(t.context.platform.urls.api).origin}/#/apps/shop`);
    await page.locator("#formation").waitFor();
    const phone = await page.evaluate(() => ({
      fits: document.documentElement.scrollWidth <= window.innerWidth,
      // For the failure report: what sticks out, tables (which scroll sideways in their own box) aside.
      wider: [...document.querySelectorAll("body *")]
        .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1 && !element.closest(".table-scroll"))
        .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ""}.${element.className}`),
    }));
    t.true(phone.fits, `the page does not scroll sideways at phone width; wider: ${phone.wider.join(", ")}`);
    await shot(page, "app-phone");

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByLabel("Team token", { exact: true }).waitFor();
    t.is(await page.evaluate(() => sessionStorage.getItem("berth.token")), null);
    await page.context().close();
  },
);

test.serial("logs at 1,000 lines a second: the page keeps the last 1,000, keeps following, and pauses and resumes", async (t) => {
  const source = mkdtempSync(join(tmpdir(), "berth-console-flood-"));
  t.teardown(() => rmSync(source, { recursive: true, force: true }));
  writeFileSync(join(source, "Procfile"), "chatty: node chatty.js\n");
  writeFileSync(join(source, "chatty.js"), 'let n = 0;\nsetInterval(() => {\n  for (let i = 0; i < 10; i++) console.log("line " + ++n);\n}, 10);\n');
  await berthCli(t, ["apps:create", "flood"]);
  await berthCli(t, ["deploy", source, "--app", "flood"]);
  await berthCli(t, ["pods:scale", "chatty=1", "--app", "flood"]);

  const page = await openPage(t);
  await signIn(page, t.context.tokens.acme);
  await page.goto(`${new URL(t.context.platform.urls.api).origin}/#/apps/flood/logs`);
  await waitForText(page, '[data-testid="log-lines"]', /line \d+/);
  await page.evaluate(() => {
    window.longestTaskMs = 0;
    new window.PerformanceObserver((list: any) => {
      for (const entry of list.getEntries()) window.longestTaskMs = Math.max(window.longestTaskMs, entry.duration);
    }).observe({ type: "longtask" });
  });
  const newestShown = (): Promise<number> =>
    page.evaluate(() => Number(/line (\d+)/.exec(document.querySelector('[data-testid="log-lines"]').lastElementChild?.textContent ?? "")?.[1] ?? 0));
  const waitPast = (line: number) =>
    page.waitForFunction(
      (before) => Number(/line (\d+)/.exec(document.querySelector('[data-testid="log-lines"]').lastElementChild?.textContent ?? "")?.[1] ?? 0) > before,
      line,
    );
  const shownLines = () => page.locator('[data-testid="log-lines"] .line').count();
  await waitPast((await newestShown()) + 2000);
  t.true((await shownLines()) <= 1000, "at most 1,000 lines on the page");

  // Paused, the page stands still while lines keep arriving; resumed, it jumps to the newest.
  await page.getByRole("button", { name: "Pause", exact: true }).click();
  await waitForText(page, '[data-testid="log-status"]', "new lines held");
  const paused = await newestShown();
  await page.waitForTimeout(1000);
  t.is(await newestShown(), paused, "nothing new is shown while paused");
  await page.getByRole("button", { name: "Resume", exact: true }).click();
  await waitPast(paused);
  t.true((await shownLines()) <= 1000);
  t.log(`longest main-thread task while following 1,000 lines/s: ${await page.evaluate(() => Math.round(window.longestTaskMs))} ms`);
  await shot(page, "logs-flood");
  await page.context().close();
});

test.serial("another team's token sees none of it, and a revoked token returns to sign-in with a message", async (t) => {
  const page = await openPage(t);
  await signIn(page, t.context.tokens.globex);
  await page.locator('[data-testid="live"].on').waitFor();
  t.is(await page.locator('tr[data-app="shop"]').count(), 0);
  await page.goto(`${new URL(t.context.platform.urls.api).origin}/#/apps/shop`);
  await page.getByText('No app "shop" in your team.').waitFor();

  await t.context.admin.teams.revokeToken({ id: t.context.tokens.globexId });
  await page.reload();
  await waitForText(page, '[data-testid="sign-in-message"]', "expired or was revoked");
  t.is(await page.evaluate(() => sessionStorage.getItem("berth.token")), null);
  await page.context().close();
});

test.serial("a canary shows on the app page with its share and figures, and is promoted and aborted from the page after a confirmation", async (t) => {
  const page = await openPage(t);
  await signIn(page, t.context.tokens.acme);
  const origin = new URL(t.context.platform.urls.api).origin;
  const acme = publicApi(t.context.platform.urls.api, t.context.tokens.acme);
  const { releases } = await acme.apps.listReleases({ app: "shop" });
  const first = Math.max(...releases.map((release) => release.version)) + 1;

  await berthCli(t, ["deploy", demo, "--app", "shop", "--canary", "10", "--interval", "10m", "--detach"]);
  await page.goto(`${origin}/#/apps/shop`);
  await waitForText(page, '[data-testid="canary"]', `Canary v${first}: 10 % of web requests, +10 % every 600 s while at most 1 % fail; next step`);
  await waitForText(page, '[data-testid="canary-figures"]', new RegExp(`^\\d+ requests to v${first} so far, \\d+ failed, \\d+ 5xx$`));
  await shot(page, "canary");
  // Declined, nothing happens; accepted, every request goes to the canary and its rollout completes.
  const questions: string[] = [];
  page.once("dialog", (dialog) => {
    questions.push(dialog.message());
    void dialog.dismiss();
  });
  await page.getByRole("button", { name: "Promote", exact: true }).click();
  t.deepEqual(questions, [`Send every request to v${first} now?`]);
  t.is((await acme.apps.getCanary({ app: "shop" })).rollout?.canary?.currentPercent, 10);
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Promote", exact: true }).click();
  await waitForText(page, '[data-testid="rollout-state"]', "succeeded");
  t.is(await page.locator('[data-testid="canary"]').count(), 0);

  // The next canary is aborted: its rollout rolls back, and the releases table keeps both outcomes.
  await berthCli(t, ["deploy", demo, "--app", "shop", "--canary", "10", "--interval", "10m", "--detach"]);
  await waitForText(page, '[data-testid="canary"]', `Canary v${first + 1}: 10 %`);
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Abort", exact: true }).click();
  await waitForText(page, '[data-testid="rollout-state"]', "rolled back");
  await page.getByRole("link", { name: "Releases & config", exact: true }).click();
  await waitForText(
    page,
    `#releases tr[data-version="${first}"] [data-testid="canary-outcome"]`,
    new RegExp(`^promoted by hand \\(PROMOTED_BY_HAND\\): \\d+ requests to v${first}`),
  );
  await waitForText(
    page,
    `#releases tr[data-version="${first + 1}"] [data-testid="canary-outcome"]`,
    new RegExp(`^aborted by hand \\(ABORTED_BY_HAND\\): \\d+ requests to v${first + 1}`),
  );
  await shot(page, "canary-releases");
  await page.context().close();
});

test.serial("the console called nothing but the page's files and the public RPCs, and never showed a token", (t) => {
  t.deepEqual(t.context.strayRequests, []);
  t.deepEqual(t.context.leaks, []);
});
