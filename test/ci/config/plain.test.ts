import { describe, expect, it } from "vitest";
import { makeDefaultSettings, parsePlainWranglerConfig } from "../../../ci/config/plain.ts";
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
		[
			"a table name that is not an identifier",
			{ name: "a", d1_databases: [{ binding: "DB", migrations_table: "1x" }] },
		],
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
		["a null-prototype object", Object.assign(Object.create(null), { name: "a" })],
	])("leaves %s to zod", (_label, raw) => {
		expect(parsePlainWranglerConfig(raw)).toBeUndefined();
	});

	it.each([
		["no name", {}],
		["a numeric name", { name: 12 }],
		["a binding without binding", { name: "a", d1_databases: [{}] }],
		[
			"a table name that is not an identifier",
			{ name: "a", d1_databases: [{ binding: "DB", migrations_table: "a-b" }] },
		],
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
