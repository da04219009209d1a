import type { Metafile } from "esbuild";

/** Builds dist/berth.js and dist/inputs.json; returns esbuild's metafile. */
export function bundle(): Promise<Metafile>;
