import test from "ava";
import { RoutingClass } from "@berth/proto/type/v1/process";
import { parseProcfile } from "../src/procfile.js";

test("parses every line of the demo Procfile with its routing class", (t) => {
  const parsed = parseProcfile(
    "web: node web.js\nadmin-web: node web.js --admin\n\n# background\nworker: node worker.js\nrelease: node release.js\napi-tcp: node api-tcp.js\nsfu-rtc: node sfu.js\n",
  );
  if (!parsed.ok) return t.fail(parsed.problems.join("; "));
  t.deepEqual(
    parsed.processes.map((p) => [p.processType, p.command, p.routingClass]),
    [
      ["web", "node web.js", RoutingClass.WEB],
      ["admin-web", "node web.js --admin", RoutingClass.WEB],
      ["worker", "node worker.js", RoutingClass.WORKER],
      ["release", "node release.js", RoutingClass.RELEASE],
      ["api-tcp", "node api-tcp.js", RoutingClass.TCP],
      ["sfu-rtc", "node sfu.js", RoutingClass.RTC],
    ],
  );
});

test("keeps colons inside the command and accepts CRLF line ends", (t) => {
  const parsed = parseProcfile("web: node -e 'console.log(\"a:b\")'\r\nclock: sleep 1\r\n");
  if (!parsed.ok) return t.fail(parsed.problems.join("; "));
  t.is(parsed.processes[0]!.command, `node -e 'console.log("a:b")'`);
  t.is(parsed.processes[1]!.processType, "clock");
});

const refusals: [string, string, RegExp][] = [
  ["a line without a command", "web: node web.js\nworker:\n", /^line 2: process type "worker" has no command$/],
  ["a line without a colon", "web node web.js", /^line 1: expected "<type>: <command>"/],
  ["an upper-case type", "Web: node web.js", /^line 1: process type "Web" must be lowercase/],
  ["a type with an underscore", "web_admin: x", /^line 1: process type "web_admin"/],
  ["a type ending in a dash", "web-: x", /^line 1: process type "web-"/],
  ["a duplicate type", "web: a\nweb: b", /^line 2: process type "web" is declared twice$/],
  ["an empty Procfile", "# nothing\n\n", /declares no process type/],
];

for (const [name, text, problem] of refusals) {
  test(`refuses ${name}, naming the line`, (t) => {
    const parsed = parseProcfile(text);
    if (parsed.ok) return t.fail("parsed");
    t.regex(parsed.problems[0]!, problem);
  });
}

test("reports every bad line, not only the first", (t) => {
  const parsed = parseProcfile("web:\nBAD: x\nworker: ok");
  if (parsed.ok) return t.fail("parsed");
  t.is(parsed.problems.length, 2);
});
