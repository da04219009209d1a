import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "../command.js";
import { CliFailure } from "../exit-codes.js";
import { parseProcfile } from "@berth/kit/contract";
import { retryUnavailable } from "../retry.js";
import { followChange } from "../rollout-progress.js";
import { packSource, SourceArchiveError } from "@berth/kit/source-archive";

const DEFAULT_CHUNK_BYTES = 1024 * 1024;

async function readProcfile(dir: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(join(dir, "Procfile"), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw error;
  }
  const check = parseProcfile(text);
  if (!check.ok) throw new CliFailure(`Procfile: ${check.problems.join("; ")}`);
  return text;
}

function sizeText(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** deploy: pack, upload, release, and follow the rollout to its end. */
export const deployCommands: Command[] = [
  {
    name: "deploy",
    summary: "deploy a directory: upload it, release it and follow the rollout live",
    usage: "[<dir>] --app <app> [--detach] [--description <text>]",
    app: true,
    positionals: { min: 0, max: 1 },
    options: {
      detach: { type: "boolean", description: "return once the release is created, without following the rollout" },
      description: { type: "string", placeholder: "<text>", description: "what this release changes" },
    },
    details: [
      "The directory (default: the current one) is packed as a tar.gz without .git and uploaded in chunks;",
      "its Procfile decides the process types (none means a single web process).",
      "Exits 0 when the rollout succeeds, 5 when it fails or is rolled back.",
    ],
    async run({ args, out, session, app, signal }) {
      const name = app();
      const dir = resolve(args.positionals[0] ?? ".");
      const procfile = await readProcfile(dir);
      const archive = await packSource(dir).catch((error: unknown) => {
        throw error instanceof SourceArchiveError ? new CliFailure(error.message) : error;
      });
      const api = await session();
      out.note(`Uploading ${dir} (${sizeText(archive.bytes.length)})...`);
      const upload = await retryUnavailable(() => api.apps.beginSourceUpload({ app: name, sizeBytes: BigInt(archive.bytes.length), sha256: archive.sha256 }));
      const chunkBytes = upload.maxChunkBytes || DEFAULT_CHUNK_BYTES;
      for (let offset = 0; offset < archive.bytes.length; offset += chunkBytes) {
        const data = archive.bytes.subarray(offset, offset + chunkBytes);
        await retryUnavailable(() => api.apps.uploadSourceChunk({ app: name, uploadId: upload.uploadId, offset: BigInt(offset), data }));
      }
      // One request id for every attempt: a retried deploy never makes two releases.
      const request = {
        app: name,
        artifact: { source: { case: "sourceUploadId" as const, value: upload.uploadId }, digest: archive.sha256 },
        procfile,
        description: (args.options.description as string | undefined) ?? "",
        requestId: randomUUID(),
      };
      const deployed = await retryUnavailable(() => api.apps.deploy(request));
      const { release, rollout } = deployed;
      if (args.options.detach || !rollout) {
        if (args.json) out.json(deployed);
        else out.line(`Released v${release?.version}; rollout ${rollout?.id ?? "-"} continues in the background`);
        return;
      }
      await followChange(
        { out, json: args.json, signal },
        api,
        name,
        { release, rollout },
        { what: "deploy", done: (version) => `Deployed v${version} to ${name}` },
      );
    },
  },
];
