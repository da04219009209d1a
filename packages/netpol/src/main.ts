import { createLogger, readConfigOrExit, runUntilSignal } from "@berth/kit";
import { KubeConfig } from "@kubernetes/client-node";
import { readNetpolConfig } from "./config.js";
import { startNetpol } from "./start-netpol.js";

const config = readConfigOrExit("netpol", () => readNetpolConfig(process.env));
const logger = createLogger("netpol", { level: config.logLevel });
let kubeConfig: KubeConfig | undefined;
if (config.engine === "kubernetes") {
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
}
await runUntilSignal(logger, [await startNetpol(config, { logger, kubeConfig })]);
