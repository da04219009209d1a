#!/usr/bin/env node
// The `berth` command: registers tsx so that the TypeScript sources run as they are (berth has no build step).
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
