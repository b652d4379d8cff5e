import { UserError } from "../errors.ts";

// Names that would replace the pipeline's own credentials or settings inside the process that
// uploads the secrets; the same rule for the CLI, the Dagger module and the Actions shim.
const RESERVED = /^(CLOUDFLARE_|WP_|WORKERS_PIPELINE_|GITHUB_SHA$|CI$|PATH$|HOME$|NODE_OPTIONS$)/;
const VALID = /^[A-Za-z_]\w*$/;

/** Why a Worker secret name cannot be passed from the environment, or undefined when it can. */
export function lintSecretName(name: string): string | undefined {
	if (!VALID.test(name))
		return `"${name}" is not a valid environment variable name (letters, digits, _; not starting with a digit)`;
	if (RESERVED.test(name))
		return `"${name}" is reserved: it would replace the pipeline's own credentials or settings; upload it under another name`;
	return undefined;
}

/** Throws a usage error (exit 2) naming every bad --secrets-from-env name. */
export function assertSecretNames(names: readonly string[]): void {
	const problems = names.map(lintSecretName).filter((p): p is string => p !== undefined);
	if (problems.length)
		throw new UserError(`--secrets-from-env: ${problems.join("; ")}.`, "E_USAGE");
}
