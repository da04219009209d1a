import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ApiSession } from "../api-session.js";
import type { Command } from "../command.js";
import { CliFailure, UsageError } from "../exit-codes.js";
import { parseProcfile } from "@berth/kit/contract";
import { retryUnavailable } from "../retry.js";
import { followChange } from "../rollout-progress.js";
import { packSource, SourceArchiveError } from "@berth/kit/source-archive";
import { CANARY_OPTIONS, canaryPolicyOf } from "./canary.js";

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

/** The release request of `--image`: the image reference, and the Procfile of `--procfile` (none: `web` runs the image's entrypoint). */
async function imageRelease(
  image: string,
  procfilePath: string | undefined,
): Promise<{ artifact: { source: { case: "image"; value: string } }; procfile: string }> {
  let procfile = "";
  if (procfilePath !== undefined) {
    try {
      procfile = await readFile(resolve(procfilePath), "utf8");
    } catch (error) {
      throw new CliFailure(`--procfile ${procfilePath}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
    }
    const check = parseProcfile(procfile);
    if (!check.ok) throw new CliFailure(`${procfilePath}: ${check.problems.join("; ")}`);
  }
  return { artifact: { source: { case: "image", value: image } }, procfile };
}

/** The release request of a directory: packed, uploaded in chunks, with its Procfile. */
async function sourceRelease(
  dir: string,
  name: string,
  api: ApiSession,
  note: (text: string) => void,
): Promise<{ artifact: { source: { case: "sourceUploadId"; value: string }; digest: string }; procfile: string }> {
  const procfile = await readProcfile(dir);
  const archive = await packSource(dir).catch((error: unknown) => {
    throw error instanceof SourceArchiveError ? new CliFailure(error.message) : error;
  });
  note(`Uploading ${dir} (${sizeText(archive.bytes.length)})...`);
  const upload = await retryUnavailable(() => api.apps.beginSourceUpload({ app: name, sizeBytes: BigInt(archive.bytes.length), sha256: archive.sha256 }));
  const chunkBytes = upload.maxChunkBytes || DEFAULT_CHUNK_BYTES;
  for (let offset = 0; offset < archive.bytes.length; offset += chunkBytes) {
    const data = archive.bytes.subarray(offset, offset + chunkBytes);
    await retryUnavailable(() => api.apps.uploadSourceChunk({ app: name, uploadId: upload.uploadId, offset: BigInt(offset), data }));
  }
  return { artifact: { source: { case: "sourceUploadId", value: upload.uploadId }, digest: archive.sha256 }, procfile };
}

/** deploy: pack and upload a directory (or name an image), release, and follow the rollout to its end. */
export const deployCommands: Command[] = [
  {
    name: "deploy",
    summary: "deploy a directory (or an image on kubernetes): release it and follow the rollout live",
    usage:
      "[<dir>] --app <app> [--image <ref> [--procfile <file>]] [--detach] [--description <text>] [--canary <percent> [--step <percent>] [--interval <d>] [--max-failure-rate <percent>]]",
    app: true,
    positionals: { min: 0, max: 1 },
    options: {
      image: { type: "string", placeholder: "<ref>", description: "deploy this container image instead of a directory (kubernetes engine)" },
      procfile: { type: "string", placeholder: "<file>", description: "with --image: the Procfile of the release (default: web runs the image's entrypoint)" },
      detach: { type: "boolean", description: "return once the release is created, without following the rollout" },
      description: { type: "string", placeholder: "<text>", description: "what this release changes" },
      ...CANARY_OPTIONS,
    },
    details: [
      "The directory (default: the current one) is packed as a tar.gz without .git and uploaded in chunks;",
      "its Procfile decides the process types (none means a single web process).",
      "With --image (kubernetes engine only), the platform pins the release to the digest the",
      "registry reports for the tag, so a rollback or a scale-up runs the same bytes.",
      "With --canary, one replica of each web type of the new release runs beside the serving ones and",
      "gets that share of their requests (a client is kept on the release it got by a cookie); the share",
      "grows by --step every --interval while at most --max-failure-rate % of the canary's requests fail,",
      "and at 100 % the rollout completes; over the limit, or unhealthy, it is rolled back (see canary:*).",
      "Exits 0 when the rollout succeeds, 5 when it fails or is rolled back.",
    ],
    async run({ args, out, session, app, signal }) {
      const name = app();
      const image = args.options.image as string | undefined;
      const procfilePath = args.options.procfile as string | undefined;
      if (image !== undefined && args.positionals.length > 0) throw new UsageError("give a directory or --image, not both");
      if (image === undefined && procfilePath !== undefined) throw new UsageError("--procfile goes with --image (a directory brings its own Procfile)");
      if (image !== undefined && image.trim() === "") throw new UsageError("--image needs an image reference");
      const canary = canaryPolicyOf(args);
      const content = image !== undefined ? await imageRelease(image, procfilePath) : undefined;
      const api = await session();
      const { artifact, procfile } = content ?? (await sourceRelease(resolve(args.positionals[0] ?? "."), name, api, (text) => out.note(text)));
      // One request id for every attempt: a retried deploy never makes two releases.
      const request = {
        app: name,
        artifact,
        procfile,
        description: (args.options.description as string | undefined) ?? "",
        requestId: randomUUID(),
        canary,
      };
      const deployed = await retryUnavailable(() => api.apps.deploy(request));
      const { release, rollout } = deployed;
      if (image !== undefined && !args.json) {
        const digest = release?.artifact?.digest;
        out.note(
          digest ? `Image ${image} pinned to ${digest}` : `Image ${image}: the registry reported no digest; the release is pinned to what its first pod pulls`,
        );
      }
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
