import { failedPrecondition } from "@berth/kit";
import type { CommandRunner } from "../engine.js";
import { streamCommand } from "./command-stream.js";
import type { ReplicaSupervisor } from "./replica-supervisor.js";

/**
 * `run` and `ps:exec` on this machine: a one-off runs like a release task
 * (in a container of its own where replicas run in containers); an exec
 * joins the replica's own container.
 */
export function createLocalCommandRunner(supervisor: ReplicaSupervisor, limits: { commandTimeoutMs: number; graceMs: number }): CommandRunner {
  return {
    async *runOneOff(_release, task, signal) {
      const { line, ended } = await supervisor.oneOffCommand(task);
      let released = false;
      try {
        for await (const event of streamCommand(line, { timeoutMs: task.timeoutMs, graceMs: limits.graceMs }, signal)) {
          if (event.kind !== "exit") {
            yield event;
            continue;
          }
          released = true;
          const reason = await ended();
          yield reason === undefined ? event : { kind: "exit", code: null, reason };
        }
      } finally {
        if (!released) await ended();
      }
    },

    async *exec(app, replica, command, signal) {
      const line = supervisor.execCommand(replica, command);
      if (line === undefined) throw failedPrecondition(`replica "${replica}" of app "${app}" is not running`);
      yield* streamCommand(line, { timeoutMs: limits.commandTimeoutMs, graceMs: limits.graceMs }, signal);
    },
  };
}
