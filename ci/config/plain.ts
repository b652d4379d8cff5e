// The common config shapes validated without zod, so a start-up with a plain config never loads
// it (30-60 ms). Each parse* returns exactly what the zod schema in schema.ts returns, or
// undefined for anything it does not accept plainly: the caller then asks zod for the verdict
// and its messages. test/ci/config/plain.test.ts holds both to the same outputs.
import type { PipelineSettings, WranglerConfig, WranglerD1Binding } from "./schema.ts";

type Plain = Record<string, unknown>;

// Only ordinary objects: zod decides about anything exotic (null prototype, `__proto__` keys).
const isPlainObject = (value: unknown): value is Plain =>
	typeof value === "object" &&
	value !== null &&
	Object.getPrototypeOf(value) === Object.prototype &&
	!Object.hasOwn(value, "__proto__");

const isText = (value: unknown, minLength = 0): boolean =>
	typeof value === "string" && value.length >= minLength;

const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
	migrations_table: (field: unknown) =>
		typeof field === "string" && SQL_IDENTIFIER.test(field) ? field : undefined,
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
