// The common config shapes validated without zod, so a start-up with a plain config never loads
// it (30-60 ms). Each parse* returns exactly what the zod schema in schema.ts returns, or
// undefined for anything it does not accept plainly: the caller then asks zod for the verdict
// and its messages. test/ci/config/plain.test.ts holds both to the same outputs.
import { NAMING_PRESETS, type NamingPreset, type NamingRule } from "./naming.ts";
import type {
	Acknowledgement,
	Naming,
	PipelineSettings,
	WranglerConfig,
	WranglerD1Binding,
} from "./schema.ts";

type Plain = Record<string, unknown>;

// Ordinary objects, and the null-prototype ones smol-toml makes (zod accepts both and returns
// ordinary ones); zod decides about anything else, and about `__proto__` keys.
const isPlainObject = (value: unknown): value is Plain => {
	if (typeof value !== "object" || value === null) return false;
	const proto: unknown = Object.getPrototypeOf(value);
	return (proto === Object.prototype || proto === null) && !Object.hasOwn(value, "__proto__");
};

const isText = (value: unknown, minLength = 0): boolean =>
	typeof value === "string" && value.length >= minLength;

/**
 * A zod `looseObject`: the known keys in the schema's order (each checked by its rule, absent
 * when absent), then the other keys as given; undefined when a rule fails.
 */
function looseObject(
	value: unknown,
	rules: Record<string, (field: unknown) => unknown>,
	required: readonly string[],
): Plain | undefined {
	if (!isPlainObject(value)) return undefined;
	const out: Plain = {};
	for (const [key, rule] of Object.entries(rules)) {
		if (!Object.hasOwn(value, key)) {
			if (required.includes(key)) return undefined;
			continue;
		}
		const parsed = rule(value[key]);
		if (parsed === undefined) return undefined;
		out[key] = parsed;
	}
	for (const [key, field] of Object.entries(value)) {
		if (field === undefined) return undefined;
		if (!Object.hasOwn(rules, key)) out[key] = field;
	}
	return out;
}

/** A rule that keeps a string of at least `minLength` characters as it is. */
const text =
	(minLength = 0) =>
	(field: unknown) =>
		isText(field, minLength) ? field : undefined;

const record =
	(each: (field: unknown) => unknown = (field) => field) =>
	(field: unknown): Plain | undefined => {
		if (!isPlainObject(field)) return undefined;
		const out: Plain = {};
		for (const [key, item] of Object.entries(field)) {
			const parsed = item === undefined ? undefined : each(item);
			if (parsed === undefined) return undefined;
			out[key] = parsed;
		}
		return out;
	};

const array =
	(each: (item: unknown) => unknown) =>
	(field: unknown): unknown[] | undefined => {
		if (!Array.isArray(field)) return undefined;
		const out: unknown[] = [];
		for (const item of field) {
			const parsed = each(item);
			if (parsed === undefined) return undefined;
			out.push(parsed);
		}
		return out;
	};

const D1_BINDING_RULES = {
	binding: text(1),
	database_name: text(1),
	database_id: text(1),
	preview_database_id: text(),
	migrations_dir: text(1),
	migrations_table: text(1),
	migrations_pattern: text(1),
};

const d1Binding = (value: unknown) =>
	looseObject(value, D1_BINDING_RULES, ["binding"]) as WranglerD1Binding | undefined;

const environment = (value: unknown) =>
	looseObject(value, { name: text(1), d1_databases: array(d1Binding), vars: record() }, []);

/** wranglerConfigSchema.safeParse(raw).data for a plainly valid config; undefined: ask zod. */
export function parsePlainWranglerConfig(raw: unknown): WranglerConfig | undefined {
	return looseObject(
		raw,
		{
			name: text(1),
			main: text(),
			d1_databases: array(d1Binding),
			vars: record(),
			env: record(environment),
		},
		["name"],
	) as WranglerConfig | undefined;
}

/** pipelineSettingsSchema.parse({}): the settings of a project without workers-pipeline.jsonc. */
export function makeDefaultSettings(): PipelineSettings {
	return {
		migrations: { naming: "strict", acknowledge: [] },
		lint: { biome: true, typecheck: true },
		build: { budgetGzipKiB: 3072 },
		deploy: { healthPath: "/api/health", healthUrls: {} },
		test: { command: ["npm", "test"] },
		e2e: { readyTimeoutSeconds: 180 },
		format: {},
		architecture: { paths: ["src"] },
		mutation: { criticalPaths: [] },
		timeouts: {},
	};
}

const ACK_CODE = /^[A-Z0-9_*?]+$/;

/** Only the keys given, each at most once: what a zod `strictObject` allows. */
const hasOnlyKeys = (value: Plain, keys: readonly string[]): boolean =>
	Object.keys(value).every((key) => keys.includes(key) && value[key] !== undefined);

function plainNaming(value: unknown): Naming | undefined {
	// One rule per migrations dir: every value a preset or a rule.
	if (isPlainObject(value) && !("pattern" in value) && !("description" in value)) {
		const entries = Object.entries(value).map(([dir, rule]) => [dir, plainOneNaming(rule)]);
		const valid = entries.every(([dir, rule]) => dir !== "" && rule !== undefined);
		return valid ? (Object.fromEntries(entries) as Naming) : undefined;
	}
	return plainOneNaming(value);
}

function plainOneNaming(value: unknown): NamingPreset | NamingRule | undefined {
	if (typeof value === "string")
		return Object.hasOwn(NAMING_PRESETS, value) ? (value as NamingPreset) : undefined;
	if (!isPlainObject(value) || !hasOnlyKeys(value, ["pattern", "description"])) return undefined;
	const { pattern, description } = value;
	if (typeof pattern !== "string" || !isText(description, 1)) return undefined;
	try {
		new RegExp(pattern);
	} catch {
		return undefined;
	}
	return { pattern, description: description as string };
}

function plainAcknowledgement(value: unknown): Acknowledgement | undefined {
	if (!isPlainObject(value) || !hasOnlyKeys(value, ["code", "files", "reason"])) return undefined;
	const { code, files, reason } = value;
	if (typeof code !== "string" || !ACK_CODE.test(code) || typeof reason !== "string")
		return undefined;
	// zod's .trim() runs before .min(10), and its output is the trimmed text.
	const trimmed = reason.trim();
	if (trimmed.length < 10) return undefined;
	if (files === undefined) return { code, reason: trimmed };
	const globs = array(text(1))(files) as string[] | undefined;
	if (globs === undefined || globs.length === 0) return undefined;
	return { code, files: globs, reason: trimmed };
}

type Rule = (field: unknown) => unknown;

/** A zod `strictObject` with defaults: keys in the schema's order, defaults where absent. */
function strictSection(
	value: unknown,
	fields: readonly (readonly [key: string, rule: Rule, fallback?: () => unknown])[],
): Plain | undefined {
	if (
		!isPlainObject(value) ||
		!hasOnlyKeys(
			value,
			fields.map(([key]) => key),
		)
	)
		return undefined;
	const out: Plain = {};
	for (const [key, rule, fallback] of fields) {
		if (value[key] === undefined) {
			if (fallback) out[key] = fallback();
			continue;
		}
		const parsed = rule(value[key]);
		if (parsed === undefined) return undefined;
		out[key] = parsed;
	}
	return out;
}

const bool: Rule = (field) => (typeof field === "boolean" ? field : undefined);
const number =
	(accepts: (n: number) => boolean): Rule =>
	(field) =>
		typeof field === "number" && Number.isFinite(field) && accepts(field) ? field : undefined;
const positive = number((n) => n > 0);
const path = (field: unknown) =>
	typeof field === "string" && field.startsWith("/") ? field : undefined;
const command: Rule = (field) => {
	const parts = array(text(1))(field);
	return parts !== undefined && parts.length > 0 ? parts : undefined;
};
// z.url() has rules of its own: only an empty map is judged here.
const noUrls: Rule = (field) =>
	isPlainObject(field) && Object.keys(field).length === 0 ? {} : undefined;

// pipelineSettingsSchema's sections (schema.ts), in its order, with its defaults.
const SECTIONS: readonly (readonly [string, (value: unknown) => unknown])[] = [
	["migrations", plainMigrations],
	[
		"lint",
		(v) =>
			strictSection(v, [
				["biome", bool, () => true],
				["typecheck", bool, () => true],
				["command", command],
				["formatCommand", command],
				["typecheckCommand", command],
			]),
	],
	[
		"build",
		(v) =>
			strictSection(v, [
				["budgetGzipKiB", number((n) => n > 0 && n <= 10_240), () => 3072],
				["command", command],
				["output", text(1)],
			]),
	],
	[
		"deploy",
		(v) =>
			strictSection(v, [
				["healthPath", path, () => "/api/health"],
				["healthUrls", noUrls, () => ({})],
			]),
	],
	["test", (v) => strictSection(v, [["command", command, () => ["npm", "test"]]])],
	[
		"e2e",
		(v) =>
			strictSection(v, [
				["seed", text(1)],
				["readyPath", path],
				["readyTimeoutSeconds", positive, () => 180],
				["browser", text(1)],
			]),
	],
	["format", (v) => strictSection(v, [["command", command]])],
	[
		"architecture",
		(v) =>
			strictSection(v, [
				["command", command],
				["paths", command, () => ["src"]],
			]),
	],
	[
		"mutation",
		(v) =>
			strictSection(v, [
				["threshold", number((n) => n >= 0 && n <= 100)],
				["base", text(1)],
				["criticalPaths", array(text(1)), () => []],
			]),
	],
	[
		"timeouts",
		(v) =>
			strictSection(
				v,
				[
					"lint",
					"test",
					"build",
					"migration-test",
					"format",
					"architecture",
					"e2e",
					"mutation",
				].map((step) => [step, positive] as const),
			),
	],
];

function plainMigrations(value: unknown): PipelineSettings["migrations"] | undefined {
	const migrations = strictSection(value, [
		["snapshot", text(1)],
		["naming", plainNaming, () => "strict"],
		["acknowledge", array(plainAcknowledgement), () => []],
	]);
	return migrations as PipelineSettings["migrations"] | undefined;
}

/**
 * pipelineSettingsSchema.parse(raw) for settings zod would accept without a message; undefined
 * for anything else (and for health URLs, whose rules are zod's), which zod then judges.
 */
export function parsePlainSettings(raw: unknown): PipelineSettings | undefined {
	const keys = ["$schema", ...SECTIONS.map(([key]) => key)];
	if (!isPlainObject(raw) || !hasOnlyKeys(raw, keys)) return undefined;
	const defaults = makeDefaultSettings() as unknown as Plain;
	const out: Plain = {};
	if (raw.$schema !== undefined) {
		if (typeof raw.$schema !== "string") return undefined;
		out.$schema = raw.$schema;
	}
	for (const [key, parse] of SECTIONS) {
		if (raw[key] === undefined) {
			out[key] = defaults[key];
			continue;
		}
		const parsed = parse(raw[key]);
		if (parsed === undefined) return undefined;
		out[key] = parsed;
	}
	return out as PipelineSettings;
}
