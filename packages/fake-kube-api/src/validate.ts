import { isJsonObject } from "./patch.js";

/** One reason an object is invalid, named by field like a real API server does. */
export interface SchemaViolation {
  /** Field path such as `spec.template.spec.containers[0].image`. */
  field: string;
  message: string;
}

/** What `validateKubernetesObject` found. */
export interface ValidationResult {
  /** No violations. */
  valid: boolean;
  /** kubernetes-models had a schema for the kind; false for custom resources, where only metadata is checked. */
  schemaChecked: boolean;
  violations: SchemaViolation[];
}

/** A synchronous validator for one apiVersion/kind. */
export type ObjectValidator = (object: unknown) => SchemaViolation[];

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: { missingProperty?: string };
}

interface ModelClass {
  apiVersion: string;
  kind: string;
  prototype: { validate(this: unknown): void };
}

function fieldOf(instancePath: string): string {
  return instancePath
    .split("/")
    .filter((part) => part !== "")
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === "" ? part : `${path}.${part}`), "");
}

function violationsOf(errors: readonly AjvError[]): SchemaViolation[] {
  return errors.map((error) =>
    error.keyword === "required"
      ? { field: [fieldOf(error.instancePath), error.params.missingProperty].filter(Boolean).join("."), message: "Required value" }
      : { field: fieldOf(error.instancePath), message: `Invalid value: ${error.message ?? error.keyword}` },
  );
}

const validators = new Map<string, Promise<ObjectValidator | undefined>>();

async function importModel(apiVersion: string, kind: string): Promise<ModelClass | undefined> {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  // The specifier is built from request data: only let well-formed names reach import().
  if (!/^[a-z0-9.-]*$/.test(group!) || !/^v[0-9a-z]+$/.test(version!) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined;
  const specifier = group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
  try {
    const module = (await import(specifier)) as Record<string, ModelClass | undefined>;
    const model = module[kind];
    // Sub-structures (DeploymentSpec) have modules too; only top-level kinds carry apiVersion/kind.
    return model?.apiVersion === apiVersion && model.kind === kind ? model : undefined;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw error;
  }
}

/**
 * Loads the kubernetes-models schema validator for a kind, or undefined when
 * kubernetes-models does not know the kind. Cached; the returned function is
 * synchronous so a write can validate without yielding mid-update.
 */
export function loadSchemaValidator(apiVersion: string, kind: string): Promise<ObjectValidator | undefined> {
  const key = `${apiVersion}/${kind}`;
  let validator = validators.get(key);
  if (validator === undefined) {
    validator = importModel(apiVersion, kind).then(
      (model) =>
        model &&
        ((object: unknown) => {
          try {
            model.prototype.validate.call(object);
            return [];
          } catch (error) {
            const errors = (error as { errors?: AjvError[] }).errors;
            if (!Array.isArray(errors)) throw error;
            return violationsOf(errors);
          }
        }),
    );
    validators.set(key, validator);
  }
  return validator;
}

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const qualifiedName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !dns1123Subdomain.test(prefix))) return "prefix part must be a lowercase RFC 1123 subdomain";
  if (name.length > 63 || !qualifiedName.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', start and end with one, and be at most 63 characters";
  return undefined;
}

/**
 * Checks what a real API server checks in metadata for every kind: the name
 * (a DNS label for Namespace and Service, a DNS subdomain otherwise) and the
 * syntax of label keys and values.
 */
export function validateMetadata(object: unknown): SchemaViolation[] {
  if (!isJsonObject(object) || !isJsonObject(object.metadata)) return [{ field: "metadata", message: "Required value" }];
  const violations: SchemaViolation[] = [];
  const { name, labels } = object.metadata;
  if (typeof name === "string" && name !== "") {
    const label = object.kind === "Namespace" && object.apiVersion === "v1";
    const service = object.kind === "Service" && object.apiVersion === "v1";
    const valid = service
      ? name.length <= 63 && dns1035Label.test(name)
      : label
        ? name.length <= 63 && dns1123Label.test(name)
        : name.length <= 253 && dns1123Subdomain.test(name);
    if (!valid)
      violations.push({
        field: "metadata.name",
        message: `Invalid value: ${JSON.stringify(name)}: must be a lowercase RFC ${service ? "1035 label" : label ? "1123 label" : "1123 subdomain"}`,
      });
  }
  if (isJsonObject(labels)) {
    for (const [key, value] of Object.entries(labels)) {
      const problem = labelKeyProblem(key);
      if (problem) violations.push({ field: "metadata.labels", message: `Invalid value: ${JSON.stringify(key)}: ${problem}` });
      if (typeof value !== "string" || value.length > 63 || (value !== "" && !qualifiedName.test(value))) {
        violations.push({
          field: "metadata.labels",
          message: `Invalid value: ${JSON.stringify(value)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and be at most 63 characters`,
        });
      }
    }
  }
  return violations;
}

/**
 * Validates a Kubernetes object as a real API server would before storing
 * it: against the OpenAPI schema of its kind (via kubernetes-models, when it
 * knows the kind) and the metadata rules every kind shares. Service tests use
 * it to assert that what they emit would be accepted.
 */
export async function validateKubernetesObject(object: unknown): Promise<ValidationResult> {
  const apiVersion = isJsonObject(object) ? object.apiVersion : undefined;
  const kind = isJsonObject(object) ? object.kind : undefined;
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return { valid: false, schemaChecked: false, violations: [{ field: typeof apiVersion === "string" ? "kind" : "apiVersion", message: "Required value" }] };
  }
  const validator = await loadSchemaValidator(apiVersion, kind);
  const violations = [...validateMetadata(object), ...(validator ? validator(object) : [])];
  return { valid: violations.length === 0, schemaChecked: validator !== undefined, violations };
}
