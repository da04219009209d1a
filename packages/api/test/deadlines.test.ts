import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { startApiHarness } from "./support/api-harness.js";

test("the caller's deadline and cancellation reach the peers the API calls", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  let remainingAtPeer: number | undefined;
  let peerCancelled!: () => void;
  const cancelled = new Promise<void>((resolve) => (peerCancelled = resolve));
  h.scheduler.hooks.getFormation = (ctx) => {
    remainingAtPeer = ctx.timeoutMs();
    return new Promise((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        peerCancelled();
        resolve();
      });
    });
  };
  const error = await t.throwsAsync(clients.formation.getFormation({ app: "shop" }, { timeoutMs: 1500 }));
  t.is(ConnectError.from(error).code, Code.DeadlineExceeded);
  await cancelled;
  t.true(remainingAtPeer !== undefined && remainingAtPeer > 0 && remainingAtPeer <= 1500, `the peer saw ${remainingAtPeer} ms left`);
});

test("without a client deadline, peer calls still carry the API's own", async (t) => {
  const h = await startApiHarness(t);
  const { clients } = await h.team("acme");
  await h.createApp(clients, "shop");
  let remainingAtPeer: number | undefined;
  h.scheduler.hooks.getFormation = async (ctx) => {
    remainingAtPeer = ctx.timeoutMs();
  };
  await clients.formation.getFormation({ app: "shop" });
  t.true(remainingAtPeer !== undefined && remainingAtPeer <= h.config.callTimeoutMs, `the peer saw ${remainingAtPeer} ms left`);
});
