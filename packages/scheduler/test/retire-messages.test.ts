import test from "ava";
import { retireMessage } from "../src/engine/local/retire-messages.js";

test("a retirement message names its reason", (t) => {
  t.is(retireMessage("stopped", "scaled-down"), "stopped (scaled-down)");
});

test("a retirement without a recorded reason says no empty parentheses", (t) => {
  t.is(retireMessage("stopped", ""), "stopped");
});
