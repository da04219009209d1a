export * from "./standard-labels.js";
export * from "./apply-object-set.js";
