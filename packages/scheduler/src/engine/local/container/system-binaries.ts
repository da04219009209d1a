import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * Where system tools are looked up. Never `$PATH`: under `npm`/`npx` it
 * starts with node_modules/.bin, where `nft` is an unrelated npm package.
 */
const SYSTEM_PATH = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"];

/** The absolute path of a system tool (`ip`, `nft`, `runc`), or undefined when it is not installed. */
export function systemBinary(name: string): string | undefined {
  return SYSTEM_PATH.map((directory) => join(directory, name)).find((path) => existsSync(path));
}
