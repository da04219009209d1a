import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "@berth/kit";
import { createCertificateAuthority, createPlatformCaIssuer } from "../../src/tls/platform-ca.js";

/** A real pebble ACME server (with pebble-challtestsrv as its DNS) on loopback. */
export interface Pebble {
  directoryUrl: string;
  /** The CA that signed pebble's own HTTPS certificate, for the ACME client. */
  listenerCaPem: string;
  /** The root that signs the certificates pebble issues (new on every start). */
  issuingRoot(): Promise<string>;
  close(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    if (child.exitCode !== null) throw new Error(`${child.spawnfile} exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`port ${port} never opened`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Whether Debian's pebble is installed here. */
export const pebbleInstalled = fs.existsSync("/usr/bin/pebble") && fs.existsSync("/usr/bin/pebble-challtestsrv");

/**
 * Starts pebble validating http-01 challenges on `httpPort` (the proxy's
 * plain HTTP port), resolving every name to 127.0.0.1 through challtestsrv.
 */
export async function startPebble(httpPort: number): Promise<Pebble> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "berth-pebble-"));
  const authority = await createCertificateAuthority("pebble listener test CA", ["localhost"]);
  const listener = await (await createPlatformCaIssuer(authority)).issueFor(["127.0.0.1", "localhost"]);
  fs.writeFileSync(path.join(directory, "cert.pem"), listener.certificatePem);
  fs.writeFileSync(path.join(directory, "key.pem"), listener.privateKeyPem);
  const [acmePort, managementPort, tlsPort, dnsPort, challtestManagementPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  fs.writeFileSync(
    path.join(directory, "config.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: path.join(directory, "cert.pem"),
        privateKey: path.join(directory, "key.pem"),
        httpPort,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const dns = spawn(
    "/usr/bin/pebble-challtestsrv",
    [
      "-defaultIPv4",
      "127.0.0.1",
      "-defaultIPv6",
      "",
      "-dns01",
      `127.0.0.1:${dnsPort}`,
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-management",
      `127.0.0.1:${challtestManagementPort}`,
    ],
    { stdio: "ignore" },
  );
  const pebble = spawn("/usr/bin/pebble", ["-config", path.join(directory, "config.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], {
    stdio: "ignore",
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
  });
  try {
    await waitForPort(challtestManagementPort, dns);
    await waitForPort(acmePort, pebble);
  } catch (error) {
    await Promise.all([stop(pebble), stop(dns)]);
    throw error;
  }
  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    listenerCaPem: authority.certificatePem,
    issuingRoot: () =>
      new Promise((resolve, reject) => {
        https
          .get({ host: "127.0.0.1", port: managementPort, path: "/roots/0", ca: authority.certificatePem }, (response) => {
            let body = "";
            response.on("data", (chunk: Buffer) => (body += chunk.toString()));
            response.on("end", () => resolve(body));
          })
          .on("error", reject);
      }),
    async close() {
      await Promise.all([stop(pebble), stop(dns)]);
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
