import type { Metafile } from "esbuild";

/** Builds dist/platform.js (and its chunks) and dist/inputs.json; returns esbuild's metafile. */
export function bundle(): Promise<Metafile>;
