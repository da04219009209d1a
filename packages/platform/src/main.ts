// `npm start`: every berth service in one process on the embedded defaults,
// each on its own port, talking to the others over real gRPC on loopback.
import { createLogger, readCommonConfig, readConfigOrExit, useEmbeddedCluster } from "@berth/kit";

const env = process.env;
const common = readConfigOrExit("platform", () => readCommonConfig(env, "api"));
const logger = createLogger("platform", { level: common.logLevel });
// On a first start the embedded cluster's initdb and server start take about
// as long as loading the services' code: begun here, they run beside it.
const earlyCluster = common.databaseUrl === undefined ? useEmbeddedCluster(common.dataDir, logger) : undefined;
// A failure here is the services' to report: their stores wait on the same start.
earlyCluster?.catch(() => {});
const { runPlatform } = await import("./platform.js");
await runPlatform(env, logger, earlyCluster);
