import test from "ava";
import { labelSelector, standardLabels } from "../src/index.js";

test("standard labels follow the app.kubernetes.io conventions and name the team", (t) => {
  t.deepEqual(standardLabels({ app: "shop", component: "web", team: "acme", managedBy: "berth-scheduler", instance: "shop-web", version: "v3" }), {
    "app.kubernetes.io/name": "shop",
    "app.kubernetes.io/instance": "shop-web",
    "app.kubernetes.io/component": "web",
    "app.kubernetes.io/part-of": "berth",
    "app.kubernetes.io/managed-by": "berth-scheduler",
    "app.kubernetes.io/version": "v3",
    "berth.dev/team": "acme",
  });
});

test("optional standard labels are left out when not given", (t) => {
  t.deepEqual(standardLabels({ app: "shop", component: "worker", managedBy: "berth-router", team: "" }), {
    "app.kubernetes.io/name": "shop",
    "app.kubernetes.io/component": "worker",
    "app.kubernetes.io/part-of": "berth",
    "app.kubernetes.io/managed-by": "berth-router",
  });
});

test("a label selector matches every label given", (t) => {
  t.is(
    labelSelector({ "app.kubernetes.io/name": "shop", "app.kubernetes.io/managed-by": "berth-scheduler" }),
    "app.kubernetes.io/name=shop,app.kubernetes.io/managed-by=berth-scheduler",
  );
  t.is(labelSelector({}), "");
});
