// Worker secrets for a deploy: read once, uploaded by wrangler, and their values kept out of
// every line the tool writes (progress, findings, reports), including where the app or wrangler
// echoes them back.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { UserError } from "../errors.ts";

/** Secret values from a JSON object or a .env file. */
export function parseSecretsFile(text: string): Record<string, string> {
	const trimmed = text.trim();
	if (trimmed.startsWith("{")) {
		const parsed = JSON.parse(trimmed) as Record<string, unknown>;
		return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
	}
	const out: Record<string, string> = {};
	for (const line of text.split(/\r?\n/)) {
		const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
		if (!match) continue;
		const raw = match[2] as string;
		// As dotenv reads it: a quoted value ends at its closing quote; an unquoted one at ` #`.
		const quoted = /^(["'])(.*?)\1\s*(?:#.*)?$/.exec(raw);
		out[match[1] as string] = quoted ? (quoted[2] as string) : raw.replace(/\s+#.*$/, "");
	}
	return out;
}

function parseSecretsText(text: string, file: string): Record<string, string> {
	try {
		return parseSecretsFile(text);
	} catch (error) {
		throw new UserError(
			`--secrets-file ${file} is not valid JSON (${(error as Error).message}); use a JSON object or KEY=value lines.`,
			"E_USAGE",
			{ cause: error },
		);
	}
}

export const REDACTED = "***";
/** Shorter values are not replaced: they would garble every line (and are no real secrets). */
export const MIN_REDACTED_LENGTH = 4;

/** Every form a value takes in output: as is, JSON-escaped, URL-encoded. */
function formsOf(value: string): string[] {
	const forms = new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]);
	return [...forms].filter((form) => form.length >= MIN_REDACTED_LENGTH);
}

export type Redactor = (text: string) => string;

/** Pure: replaces every form of every secret value, longest first (a value inside another stays hidden). */
export function makeRedactor(secrets: readonly string[]): Redactor {
	const forms = [...new Set(secrets.flatMap(formsOf))].sort((a, b) => b.length - a.length);
	if (forms.length === 0) return (text) => text;
	return (text) => forms.reduce((out, form) => out.split(form).join(REDACTED), text);
}

/** Pure: a copy of `value` with every string redacted (report data, parsed health bodies). */
export function redactDeep<T>(value: T, redact: Redactor): T {
	if (typeof value === "string") return redact(value) as T;
	if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
	if (value !== null && typeof value === "object") {
		return Object.fromEntries(
			Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)]),
		) as T;
	}
	return value;
}

/**
 * Pure: every value wrangler may upload for these secrets. wrangler expands `$VAR` / `${VAR}` in
 * dotenv values and lets the process environment override file values (its --secrets-file help),
 * so the value that reaches the Worker may be the environment's, or an expansion.
 */
export function planRedactedValues(
	secrets: Readonly<Record<string, string>>,
	env: Readonly<Record<string, string | undefined>>,
): string[] {
	const values: string[] = [];
	for (const [name, value] of Object.entries(secrets)) {
		values.push(value);
		const fromEnv = env[name];
		if (fromEnv !== undefined) values.push(fromEnv);
		const expanded = value.replace(
			/\\?\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
			(ref, braced, bare) => (ref.startsWith("\\") ? ref.slice(1) : (env[braced ?? bare] ?? "")),
		);
		if (expanded !== value) values.push(expanded);
	}
	return values;
}

export interface DeploySecrets {
	/** The file wrangler gets with `--secrets-file`, when there are secrets. */
	file: string | undefined;
	redact: Redactor;
	/** Removes the merged temp file, if one was written. */
	dispose(): void;
}

/** Reads --secrets-file and --secrets-from-env; several sources are merged into one 0600 temp file. */
export function readDeploySecrets(input: {
	root: string;
	secretsFile?: string;
	secretsFromEnv?: readonly string[];
	env: Readonly<Record<string, string | undefined>>;
}): DeploySecrets {
	const values: Record<string, string> = {};
	let file = input.secretsFile ? path.resolve(input.root, input.secretsFile) : undefined;
	if (file && input.secretsFile) {
		let text: string;
		try {
			text = readFileSync(file, "utf8");
		} catch (error) {
			throw new UserError(
				`cannot read --secrets-file ${input.secretsFile}: ${(error as NodeJS.ErrnoException).code}`,
				"E_USAGE",
				{ cause: error },
			);
		}
		Object.assign(values, parseSecretsText(text, input.secretsFile));
	}
	let tempDir: string | undefined;
	if (input.secretsFromEnv?.length) {
		const fromEnv: Record<string, string> = {};
		for (const name of input.secretsFromEnv) {
			const value = input.env[name];
			if (value === undefined)
				throw new UserError(
					`--secrets-from-env names ${name}, which is not set in the environment.`,
					"E_USAGE",
				);
			fromEnv[name] = value;
		}
		// The file's values win over the environment's, as before.
		Object.assign(fromEnv, values);
		Object.assign(values, fromEnv);
		tempDir = mkdtempSync(path.join(tmpdir(), "wp-secrets-"));
		file = path.join(tempDir, "secrets.json");
		writeFileSync(file, JSON.stringify(fromEnv), { mode: 0o600 });
		chmodSync(file, 0o600);
	}
	return {
		file,
		redact: makeRedactor(planRedactedValues(values, input.env)),
		dispose: () => {
			if (tempDir) rmSync(tempDir, { recursive: true, force: true });
		},
	};
}
