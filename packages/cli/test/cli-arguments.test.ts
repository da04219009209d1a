import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseAssignments, parseCommandArguments, parseCount, parseVersion, splitCommandLine } from "../src/arguments.js";
import type { Command } from "../src/command.js";
import { describeFailure, ExitCode, UsageError } from "../src/exit-codes.js";
import { renderTable } from "../src/table.js";

const logs: Command = {
  name: "logs",
  summary: "logs",
  usage: "",
  app: true,
  positionals: { min: 0, max: 0 },
  options: { follow: { type: "boolean", short: "f", description: "" }, type: { type: "string", description: "" } },
  run: async () => {},
};
const scale: Command = { name: "pods:scale", summary: "", usage: "<type>=<n>...", app: true, positionals: { min: 1, max: 3 }, run: async () => {} };

test("the command name is the first non-option argument; --help anywhere asks for help", (t) => {
  t.deepEqual(splitCommandLine(["pods:scale", "web=3", "--app", "shop"]), { name: "pods:scale", rest: ["web=3", "--app", "shop"], help: false });
  t.deepEqual(splitCommandLine(["logs", "-f", "--help"]), { name: "logs", rest: ["-f"], help: true });
  t.deepEqual(splitCommandLine(["help", "deploy"]), { name: "deploy", rest: [], help: true });
  t.deepEqual(splitCommandLine([]), { name: undefined, rest: [], help: true });
  t.deepEqual(splitCommandLine(["--version"]), { name: undefined, rest: ["--version"], help: false });
});

test("options, short flags, --app and --json are parsed; BERTH_APP is the default app", (t) => {
  t.deepEqual(parseCommandArguments(logs, ["-f", "--type", "web", "-a", "shop", "--json"], undefined), {
    positionals: [],
    options: { follow: true, type: "web" },
    app: "shop",
    json: true,
  });
  t.is(parseCommandArguments(logs, [], "from-env").app, "from-env");
  t.is(parseCommandArguments(logs, ["--app=flag"], "from-env").app, "flag");
  t.deepEqual(parseCommandArguments(scale, ["web=3", "worker=1"], undefined).positionals, ["web=3", "worker=1"]);
});

test("unknown options, missing values and wrong positional counts are usage errors", (t) => {
  t.throws(() => parseCommandArguments(logs, ["--tail"], undefined), { instanceOf: UsageError, message: /logs: Unknown option '--tail'/ });
  t.throws(() => parseCommandArguments(logs, ["--type"], undefined), { instanceOf: UsageError, message: /--type/ });
  t.throws(() => parseCommandArguments(logs, ["extra"], undefined), { instanceOf: UsageError, message: /unexpected argument "extra"/ });
  t.throws(() => parseCommandArguments(scale, [], undefined), { instanceOf: UsageError, message: /missing argument/ });
  t.throws(() => parseCommandArguments(scale, ["a=1", "b=2", "c=3", "d=4"], undefined), { instanceOf: UsageError });
});

test("assignments, counts and versions", (t) => {
  t.deepEqual(parseAssignments("config:set", ["A=1", "URL=postgres://x?a=b"]), [
    ["A", "1"],
    ["URL", "postgres://x?a=b"],
  ]);
  t.throws(() => parseAssignments("pods:scale", ["web"]), { instanceOf: UsageError, message: /expected <name>=<value>, got "web"/ });
  t.throws(() => parseAssignments("pods:scale", ["=3"]), { instanceOf: UsageError });
  t.throws(() => parseAssignments("pods:scale", ["web="]), { instanceOf: UsageError });
  t.is(parseCount("replicas", "3"), 3);
  t.throws(() => parseCount("replicas", "-1"), { instanceOf: UsageError, message: /whole number/ });
  t.throws(() => parseCount("replicas", "2000", 0, 1000), { instanceOf: UsageError, message: /between 0 and 1000/ });
  t.is(parseVersion("v3"), 3);
  t.is(parseVersion("12"), 12);
  t.throws(() => parseVersion("three"), { instanceOf: UsageError });
  t.throws(() => parseVersion("v0"), { instanceOf: UsageError });
});

test("tables pad columns to their widest cell, upper-case headers, no trailing spaces", (t) => {
  const rows = [
    { type: "web", replicas: "3/3", url: "https://shop.berth.localhost" },
    { type: "admin-web", replicas: "1/1", url: "" },
  ];
  const text = renderTable(
    [
      { header: "type", value: (r: (typeof rows)[number]) => r.type },
      { header: "replicas", value: (r) => r.replicas },
      { header: "url", value: (r) => r.url },
    ],
    rows,
  );
  t.is(text, ["TYPE       REPLICAS  URL", "web        3/3       https://shop.berth.localhost", "admin-web  1/1"].join("\n"));
});

test("failures map to one line and an exit code scripts can rely on", (t) => {
  t.deepEqual(describeFailure(new ConnectError('app "shop" not found', Code.NotFound)), { line: 'not found: app "shop" not found', exitCode: ExitCode.failed });
  t.is(describeFailure(new ConnectError("x", Code.Unauthenticated)).exitCode, ExitCode.auth);
  t.is(describeFailure(new ConnectError("x", Code.PermissionDenied)).exitCode, ExitCode.auth);
  t.is(describeFailure(new ConnectError("x", Code.Unavailable)).exitCode, ExitCode.unreachable);
  t.is(describeFailure(new ConnectError("name: bad", Code.InvalidArgument)).line, "invalid argument: name: bad");
  t.is(describeFailure(new UsageError("pods: missing")).exitCode, ExitCode.usage);
});
