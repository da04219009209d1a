import { Header } from "tar";

/** One entry of a hand-built tar stream. */
export interface TarEntry {
  path: string;
  type?: "File" | "Directory" | "SymbolicLink" | "Link" | "CharacterDevice";
  linkpath?: string;
  mode?: number;
  content?: Buffer | string;
  /** A size announced in the header, whatever the content. */
  size?: number;
}

/** A tar stream built entry by entry, so that a test says exactly what a hostile client would send. */
export function tarOf(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? "");
    const type = entry.type ?? "File";
    const header = new Header({
      path: entry.path,
      type,
      linkpath: entry.linkpath,
      size: entry.size ?? (type === "File" ? content.length : 0),
      mode: entry.mode ?? (type === "Directory" ? 0o755 : 0o644),
      mtime: new Date(0),
    });
    header.encode();
    blocks.push(header.block!, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
