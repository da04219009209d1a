export * from "./standard-labels.js";
export * from "./object-names.js";
export * from "./apply-object-set.js";
export * from "./kube-config.js";
export * from "./watch-collection.js";
