import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import test from "ava";
import { silentLogger } from "@berth/kit";
import { loadConsole } from "../src/console-files.js";

test("the API serves the console's page, script and style with a same-origin-only policy, and nothing else", async (t) => {
  const serve = await loadConsole(silentLogger);
  const server = createServer((request, response) => {
    if (!serve(request, response)) {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const page = await fetch(`${base}/`);
  t.is(page.status, 200);
  t.is(page.headers.get("content-type"), "text/html; charset=utf-8");
  t.regex(page.headers.get("content-security-policy") ?? "", /connect-src 'self'/);
  t.regex(await page.text(), /<script type="module" src="\/console.js">/);

  const script = await fetch(`${base}/console.js`);
  t.is(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  const etag = script.headers.get("etag")!;
  t.is((await fetch(`${base}/console.js`, { headers: { "if-none-match": etag } })).status, 304);
  t.is((await fetch(`${base}/console.css`)).headers.get("content-type"), "text/css; charset=utf-8");

  for (const path of ["/inputs.json", "/../package.json", "/berth.api.v1.AppService/ListApps"]) t.is((await fetch(`${base}${path}`)).status, 404, path);
  t.is((await fetch(`${base}/`, { method: "POST" })).status, 404, "only GET and HEAD");
});
