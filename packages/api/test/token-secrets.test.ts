import test from "ava";
import { bearerMatches, hashBearer, mintToken, OPERATOR_ADMIN_TOKEN_ID, tokenIdOf } from "../src/token-secrets.js";

test("a minted token carries its id and is stored only as its sha256", (t) => {
  const minted = mintToken();
  t.regex(minted.bearer, /^berth_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  t.is(tokenIdOf(minted.bearer), minted.id);
  t.is(minted.sha256, hashBearer(minted.bearer));
  t.regex(minted.sha256, /^[0-9a-f]{64}$/);
  t.false(minted.sha256.includes(minted.bearer.slice(23)));
});

test("verification accepts the exact bearer and nothing else", (t) => {
  const minted = mintToken();
  t.true(bearerMatches(minted.bearer, minted.sha256));
  t.false(bearerMatches(`${minted.bearer}x`, minted.sha256));
  t.false(bearerMatches(minted.bearer.slice(0, -1), minted.sha256));
  t.false(bearerMatches(mintToken().bearer, minted.sha256));
  t.false(bearerMatches(minted.bearer, "not a hash"));
});

test("two mints never share an id or a secret", (t) => {
  const a = mintToken();
  const b = mintToken();
  t.not(a.id, b.id);
  t.not(a.bearer, b.bearer);
});

test("any other string can only be the operator's admin token", (t) => {
  t.is(tokenIdOf("whatever-the-operator-chose"), OPERATOR_ADMIN_TOKEN_ID);
  t.is(tokenIdOf("berth_short_x"), OPERATOR_ADMIN_TOKEN_ID);
});
