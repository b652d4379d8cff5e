import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import {
	makeDefaultSettings,
	parsePlainSettings,
	parsePlainWranglerConfig,
} from "../../../ci/config/plain.ts";
import { configSchemas } from "../../../ci/config/schema.ts";

// Same value, same key order: the plain path must be indistinguishable from zod's.
const sameAsZod = (value: unknown, expected: unknown) => {
	expect(value).toStrictEqual(expected);
	expect(JSON.stringify(value)).toBe(JSON.stringify(expected));
};

describe("parsePlainWranglerConfig()", () => {
	it.each([
		["a name only", { name: "app" }],
		[
			"bindings with every field, unknown keys first and last",
			{
				compatibility_date: "2026-01-01",
				d1_databases: [
					{
						migrations_dir: "db/migrations",
						binding: "DB",
						database_name: "app",
						database_id: "abc",
						preview_database_id: "",
						migrations_table: "_migrations_1",
						migrations_pattern: "db/migrations/*.sql",
						remote: true,
					},
				],
				name: "app",
				main: "",
				assets: { directory: "public" },
			},
		],
		[
			"environments with vars of any value",
			{
				name: "app",
				vars: { A: "1", B: null, C: { nested: [1] } },
				env: {
					staging: { name: "app-staging", d1_databases: [{ binding: "DB" }], vars: {}, route: "x" },
					empty: {},
				},
			},
		],
		[
			"a wrangler.toml as smol-toml reads it (null-prototype objects)",
			parseToml(
				'name = "app"\nmain = "src/index.ts"\n[vars]\nA = "1"\n[[d1_databases]]\nbinding = "DB"\nmigrations_dir = "drizzle"\n[env.staging]\nname = "app-staging"\n[[env.staging.d1_databases]]\nbinding = "DB"\n',
			),
		],
	])("returns what zod returns for %s", (_label, raw) => {
		const parsed = parsePlainWranglerConfig(raw);
		expect(parsed).toBeDefined();
		sameAsZod(parsed, configSchemas().wranglerConfigSchema.parse(raw));
	});

	it("copies the objects it checks and keeps the others", () => {
		const assets = { directory: "public" };
		const raw = { name: "app", d1_databases: [{ binding: "DB" }], assets };
		const parsed = parsePlainWranglerConfig(raw) as Record<string, unknown>;
		expect(parsed).not.toBe(raw);
		expect(parsed.d1_databases).not.toBe(raw.d1_databases);
		expect(parsed.assets).toBe(assets);
	});

	it.each([
		["no name", {}],
		["an empty name", { name: "" }],
		["a numeric name", { name: 12 }],
		["not an object", []],
		["null", null],
		["a binding without binding", { name: "a", d1_databases: [{ database_id: "x" }] }],
		["an empty binding name", { name: "a", d1_databases: [{ binding: "" }] }],
		["an empty table name", { name: "a", d1_databases: [{ binding: "DB", migrations_table: "" }] }],
		[
			"an empty migrations_dir",
			{ name: "a", d1_databases: [{ binding: "DB", migrations_dir: "" }] },
		],
		["d1_databases as an object", { name: "a", d1_databases: { binding: "DB" } }],
		["vars as an array", { name: "a", vars: [] }],
		["an environment that is a string", { name: "a", env: { staging: "x" } }],
		["an environment with an empty name", { name: "a", env: { staging: { name: "" } } }],
		["a null main", { name: "a", main: null }],
		["an undefined field", { name: "a", extra: undefined }],
		["a __proto__ key", JSON.parse('{"name": "a", "__proto__": {"x": 1}}')],
	])("leaves %s to zod", (_label, raw) => {
		expect(parsePlainWranglerConfig(raw)).toBeUndefined();
	});

	it.each([
		["no name", {}],
		["a numeric name", { name: 12 }],
		["a binding without binding", { name: "a", d1_databases: [{}] }],
		["an empty table name", { name: "a", d1_databases: [{ binding: "DB", migrations_table: "" }] }],
		["an environment with an empty name", { name: "a", env: { staging: { name: "" } } }],
	])("is never more lenient than zod: %s is refused by both", (_label, raw) => {
		expect(parsePlainWranglerConfig(raw)).toBeUndefined();
		expect(configSchemas().wranglerConfigSchema.safeParse(raw).success).toBe(false);
	});
});

describe("makeDefaultSettings()", () => {
	it("is pipelineSettingsSchema.parse({})", () => {
		sameAsZod(makeDefaultSettings(), configSchemas().pipelineSettingsSchema.parse({}));
	});

	it("returns fresh objects, so a caller's change never leaks into the next project", () => {
		const first = makeDefaultSettings();
		first.migrations.acknowledge.push({ code: "X", reason: "a reason long enough" });
		expect(makeDefaultSettings().migrations.acknowledge).toEqual([]);
	});
});

describe("parsePlainSettings()", () => {
	const ack = { code: "CATALOG_DUPLICATE_NUMBER", reason: "  applied in production in 2024  " };
	it.each([
		["an empty object", {}],
		["only $schema", { $schema: "./node_modules/workers-pipeline/schema.json" }],
		["an empty migrations block", { migrations: {} }],
		[
			"what init writes",
			{
				migrations: {
					naming: "drizzle-kit-v1",
					acknowledge: [
						ack,
						{ code: "D1_*", files: ["0001_*.sql", "x.sql"], reason: "kept on purpose here" },
					],
				},
			},
		],
		[
			"every section, keys in another order than the schema's",
			{
				timeouts: { mutation: 600, lint: 30.5 },
				mutation: { criticalPaths: ["ci/**"], threshold: 0, base: "main" },
				architecture: { paths: ["src", "lib"], command: ["depcruise", "src"] },
				format: { command: ["prettier", "--check", "."] },
				e2e: {
					readyTimeoutSeconds: 60,
					browser: "/usr/bin/chromium",
					seed: "seed.sql",
					readyPath: "/",
				},
				test: { command: ["node", "-e", "process.exit(0)"] },
				deploy: { healthUrls: {}, healthPath: "/healthz" },
				build: { output: "dist", command: ["vite", "build"], budgetGzipKiB: 10_240 },
				lint: {
					typecheckCommand: ["tsc"],
					command: ["eslint", "."],
					formatCommand: ["x"],
					typecheck: false,
				},
				migrations: { acknowledge: [ack], snapshot: "s.sql" },
				$schema: "x",
			},
		],
		[
			"sections with only their defaults",
			{ lint: {}, build: {}, deploy: {}, e2e: {}, timeouts: {} },
		],
		[
			"a custom naming rule, a snapshot and $schema last",
			{
				migrations: {
					snapshot: "db/schema.sql",
					naming: { pattern: "^\\d+_.+\\.sql$", description: "N_name.sql" },
				},
				$schema: "x",
			},
		],
		[
			"a naming rule per migrations dir",
			{
				migrations: {
					naming: {
						"db/migrations": "prisma",
						"analytics/drizzle": { pattern: "^\\d{4}_.+\\.sql$", description: "NNNN_x.sql" },
					},
				},
			},
		],
	])("returns what zod returns for %s", (_label, raw) => {
		const parsed = parsePlainSettings(raw);
		expect(parsed).toBeDefined();
		sameAsZod(parsed, configSchemas().pipelineSettingsSchema.parse(raw));
	});

	it.each([
		[
			"a health URL (z.url() judges it)",
			{ deploy: { healthUrls: { production: "https://x.dev/h" } } },
		],
		["a boolean given as a string", { lint: { biome: "false" } }],
		["an empty command", { test: { command: [] } }],
		["a command with an empty part", { format: { command: ["x", ""] } }],
		["a budget over the Workers limit", { build: { budgetGzipKiB: 20_000 } }],
		["a zero timeout", { timeouts: { lint: 0 } }],
		["a timeout for an unknown step", { timeouts: { deploy: 10 } }],
		["a health path without /", { deploy: { healthPath: "health" } }],
		["a threshold over 100", { mutation: { threshold: 101 } }],
		["an empty architecture paths list", { architecture: { paths: [] } }],
		["a section that is not an object", { e2e: true }],
		["an unknown key", { migrations: {}, typo: 1 }],
		["an unknown key in migrations", { migrations: { acknowledged: [] } }],
		["an unknown preset", { migrations: { naming: "flyway" } }],
		[
			"an invalid regular expression",
			{ migrations: { naming: { pattern: "(", description: "x" } } },
		],
		["a naming rule without description", { migrations: { naming: { pattern: "x" } } }],
		["a lower-case code", { migrations: { acknowledge: [{ ...ack, code: "d1_x" }] } }],
		[
			"a short reason once trimmed",
			{ migrations: { acknowledge: [{ ...ack, reason: "   short    " }] } },
		],
		["an empty files list", { migrations: { acknowledge: [{ ...ack, files: [] }] } }],
		["an empty file glob", { migrations: { acknowledge: [{ ...ack, files: [""] }] } }],
		[
			"an unknown key in an acknowledgement",
			{ migrations: { acknowledge: [{ ...ack, why: "x" }] } },
		],
		["a numeric $schema", { $schema: 1 }],
		["an empty snapshot path", { migrations: { snapshot: "" } }],
		["an array", []],
	])("leaves %s to zod", (_label, raw) => {
		expect(parsePlainSettings(raw)).toBeUndefined();
	});

	it.each([
		["an unknown key", { migrations: {}, typo: 1 }],
		["an empty command", { test: { command: [] } }],
		["a zero timeout", { timeouts: { lint: 0 } }],
		["an unknown preset", { migrations: { naming: "flyway" } }],
		["an unknown preset for one dir", { migrations: { naming: { migrations: "flyway" } } }],
		["an empty dir", { migrations: { naming: { "": "strict" } } }],
		[
			"a short reason once trimmed",
			{ migrations: { acknowledge: [{ ...ack, reason: "   short    " }] } },
		],
		["an empty files list", { migrations: { acknowledge: [{ ...ack, files: [] }] } }],
	])("is never more lenient than zod: %s is refused by both", (_label, raw) => {
		expect(parsePlainSettings(raw)).toBeUndefined();
		expect(configSchemas().pipelineSettingsSchema.safeParse(raw).success).toBe(false);
	});
});

// A key zod's schema learns and the plain path does not know would pass through unchecked:
// every key of every loose object in wranglerConfigSchema must be one the plain path checks.
describe("parsePlainWranglerConfig() and wranglerConfigSchema", () => {
	const schema = configSchemas().wranglerConfigSchema;
	const binding = schema.shape.d1_databases.unwrap().element;
	const environment = schema.shape.env.unwrap().valueType;
	const invalid = Symbol("invalid");
	const cases = [
		...Object.keys(schema.shape).map((key) => [`$.${key}`, { name: "app", [key]: invalid }]),
		...Object.keys(binding.shape).map((key) => [
			`$.d1_databases[0].${key}`,
			{ name: "app", d1_databases: [{ binding: "DB", [key]: invalid }] },
		]),
		...Object.keys(environment.shape).map((key) => [
			`$.env.staging.${key}`,
			{ name: "app", env: { staging: { [key]: invalid } } },
		]),
	] as [string, unknown][];

	it.each(cases)("checks %s (zod and the plain path both refuse a bad value)", (_at, raw) => {
		expect(schema.safeParse(raw).success).toBe(false);
		expect(parsePlainWranglerConfig(raw)).toBeUndefined();
	});
});
