import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import test from "ava";
import { freePort } from "../src/free-port.js";

test("a free port is bindable and lies below the kernel's ephemeral range, where outgoing connections cannot take it", async (t) => {
  const ephemeralStart = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
  for (const port of ports) t.true(port >= 10_000 && port < ephemeralStart, `port ${port}`);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(ports[0], "127.0.0.1", resolve);
  });
  t.teardown(() => server.close());
  t.not(await freePort(), ports[0]);
});
