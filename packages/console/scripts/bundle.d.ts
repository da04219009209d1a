import type { Metafile } from "esbuild";

/** The folder the API serves the console from (dist/, with a trailing slash). */
export const consoleDir: string;
/** Builds dist/ (index.html, console.js, console.css, inputs.json); returns esbuild's metafile. */
export function bundle(): Promise<Metafile>;
/** Bundles again when dist/ is missing or older than a source; returns dist/. */
export function ensureBundle(): Promise<string>;
