import test from "ava";
import { applyJsonPatch, applyMergePatch } from "../src/patch.js";
import { StatusError } from "../src/status.js";

test("merge patch follows the RFC 7386 examples", (t) => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, expected] of cases) t.deepEqual(applyMergePatch(target, patch), expected, JSON.stringify(patch));
});

test("merge patch leaves its input alone", (t) => {
  const target = { a: { b: 1 } };
  applyMergePatch(target, { a: { b: 2 } });
  t.deepEqual(target, { a: { b: 1 } });
});

test("JSON patch operations", (t) => {
  const document = { a: { b: [1, 2] }, "x/y": 1, "m~n": 2 };
  t.deepEqual(applyJsonPatch(document, [{ op: "add", path: "/a/b/-", value: 3 }]), { a: { b: [1, 2, 3] }, "x/y": 1, "m~n": 2 });
  t.deepEqual(applyJsonPatch(document, [{ op: "add", path: "/a/b/0", value: 0 }]), { a: { b: [0, 1, 2] }, "x/y": 1, "m~n": 2 });
  t.deepEqual(
    applyJsonPatch(document, [
      { op: "remove", path: "/x~1y" },
      { op: "replace", path: "/m~0n", value: 3 },
    ]),
    { a: { b: [1, 2] }, "m~n": 3 },
  );
  t.deepEqual(applyJsonPatch(document, [{ op: "move", from: "/a/b", path: "/c" }]), { a: {}, c: [1, 2], "x/y": 1, "m~n": 2 });
  t.deepEqual(
    applyJsonPatch(document, [
      { op: "copy", from: "/a/b/1", path: "/d" },
      { op: "test", path: "/d", value: 2 },
    ]),
    { a: { b: [1, 2] }, "x/y": 1, "m~n": 2, d: 2 },
  );
  t.deepEqual(document, { a: { b: [1, 2] }, "x/y": 1, "m~n": 2 }, "the input is not changed");
});

test("failing JSON patches are Status errors", (t) => {
  const document = { a: 1 };
  t.is(t.throws(() => applyJsonPatch(document, [{ op: "test", path: "/a", value: 2 }]), { instanceOf: StatusError })?.code, 422);
  t.is(t.throws(() => applyJsonPatch(document, [{ op: "replace", path: "/missing", value: 2 }]), { instanceOf: StatusError })?.code, 422);
  t.is(t.throws(() => applyJsonPatch(document, [{ op: "remove", path: "/a/b/c" }]), { instanceOf: StatusError })?.code, 422);
  t.is(t.throws(() => applyJsonPatch(document, { op: "add" }), { instanceOf: StatusError })?.code, 400);
  t.is(t.throws(() => applyJsonPatch(document, [{ op: "launch", path: "/a" }]), { instanceOf: StatusError })?.code, 400);
});
