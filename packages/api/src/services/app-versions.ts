import { create } from "@bufbuild/protobuf";
import type { FieldChecks } from "@berth/kit";
import { AppVersionSchema } from "@berth/proto/scheduler/v1/scheduler";
import type { AppVersion } from "@berth/proto/scheduler/v1/scheduler";
import type { ServiceDeps } from "./service-deps.js";

// `<generation>.<scheduler instance>`: clients only send it back, so its form may change.
const PUBLIC_FORM = /^(\d{1,20})\.([0-9a-f-]{1,64})$/;

/** The public, opaque form of a scheduler's app version; empty when the scheduler gave none. */
export function publicAppVersion(version: AppVersion | undefined): string {
  return version ? `${version.generation}.${version.instance}` : "";
}

/** The app version a client sent back in `field`; undefined when empty, a violation when it is not one the API gave. */
export function parseAppVersion(checks: FieldChecks, field: string, text: string): AppVersion | undefined {
  if (text === "") return undefined;
  const match = PUBLIC_FORM.exec(text);
  if (match === null) {
    checks.add(field, "must be an app_version a write answered with, or empty");
    return undefined;
  }
  return create(AppVersionSchema, { generation: BigInt(match[1]!), instance: match[2]! });
}

/** This API changed `app` and the scheduler answered `version`: later reads here show the change. Answers its public form. */
export function wroteApp(deps: Pick<ServiceDeps, "readModel">, app: string, version: AppVersion | undefined): string {
  deps.readModel.formations.wrote(app, version);
  return publicAppVersion(version);
}
