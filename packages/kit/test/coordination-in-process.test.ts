import test from "ava";
import { createCoordination } from "@berth/kit";
import { coordinationSuite } from "./support/coordination-suite.js";

// In process, "two replicas" can only be one instance: that is the backend's contract.
coordinationSuite(test, "in-process", async (options) => {
  const coordination = createCoordination(options);
  return { first: coordination, second: coordination, close: () => coordination.close() };
});
