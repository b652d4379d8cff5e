import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadProjectConfig, resolveEnvironment } from "../../../ci/config/load.ts";
import type { Acknowledgement } from "../../../ci/config/schema.ts";
import {
	acknowledgeProjectFindings,
	acknowledgesReplay,
	readCheckedCatalog,
} from "../../../ci/migrations/check.ts";
import type { Finding } from "../../../ci/report/model.ts";
import { type Files, makeProject, removeProjects } from "../../support/project.ts";

afterAll(removeProjects);

const WRANGLER = (dir = "migrations", pattern?: string) =>
	JSON.stringify({
		name: "app",
		main: "src/index.ts",
		compatibility_date: "2025-01-01",
		d1_databases: [
			{
				binding: "DB",
				database_name: "app",
				database_id: "00000000-0000-0000-0000-000000000000",
				migrations_dir: dir,
				...(pattern ? { migrations_pattern: pattern } : {}),
			},
		],
	});
const project = (files: Files, settings?: unknown) => {
	const root = makeProject({
		prefix: "wp-check-",
		files: {
			"wrangler.jsonc": WRANGLER(),
			...(settings ? { "workers-pipeline.jsonc": JSON.stringify(settings) } : {}),
			...files,
		},
	});
	const config = loadProjectConfig({ cwd: root });
	const [database] = resolveEnvironment(config, undefined).databases;
	if (!database) throw new Error("no database");
	return { config, database };
};
const check = (files: Files, settings?: unknown) => {
	const { config, database } = project(files, settings);
	return readCheckedCatalog(config, database);
};
const codes = (findings: readonly Finding[]) => findings.map((f) => f.code);

describe("readCheckedCatalog()", () => {
	it("reads the catalog and lints every readable migration, in order", () => {
		const result = check({
			"migrations/0001_a.sql": "CREATE TABLE a (id INTEGER);\n",
			"migrations/0002_b.sql": "BEGIN;\nCREATE TABLE b (id INTEGER);\nCOMMIT;\n",
		});
		expect(result.catalog.migrations.map((m) => m.name)).toEqual(["0001_a.sql", "0002_b.sql"]);
		expect(result.raw.map((f) => `${f.code} ${f.file}:${f.line}`)).toEqual([
			"D1_TRANSACTION migrations/0002_b.sql:1",
			"D1_TRANSACTION migrations/0002_b.sql:3",
		]);
		expect(result.findings).toEqual(result.raw);
	});

	it("puts catalog findings before lint findings", () => {
		const result = check({
			"migrations/0001_a.sql": "CREATE TABLE a (id INTEGER)\n",
			"migrations/0001_b.sql": "CREATE TABLE b (id INTEGER);\n",
		});
		expect(codes(result.raw)).toEqual(["CATALOG_DUPLICATE_NUMBER", "D1_MISSING_SEMICOLON"]);
	});

	it("skips the lint of an unreadable file (the catalog reports it)", () => {
		const result = check({ "migrations/0001_a.sql": Buffer.from([0xff, 0xfe, 0x42, 0x45, 0x47]) });
		expect(result.catalog.migrations[0]?.readable).toBe(false);
		expect(codes(result.raw)).toEqual(["CATALOG_INVALID_UTF8"]);
	});

	it("warns when no file matches, naming the dir, pattern and binding", () => {
		const result = check({ "migrations/README.md": "nothing here" });
		expect(result.raw).toEqual([
			{
				code: "CATALOG_EMPTY",
				severity: "warning",
				file: "migrations",
				message:
					'no migration files match migrations/*.sql; add NNNN_name.sql files, or fix migrations_dir / migrations_pattern of binding "DB".',
			},
		]);
	});

	it("names the migrations_pattern to set when the files are in drizzle-kit v1 / Prisma directories", () => {
		const result = check({
			"migrations/20250101000000_init/migration.sql": "CREATE TABLE a (id INTEGER);\n",
			"migrations/20250102000000_more/migration.sql": "CREATE TABLE b (id INTEGER);\n",
			"migrations/meta/_journal.json": "{}",
		});
		expect(result.raw.map((f) => [f.code, f.message])).toEqual([
			[
				"CATALOG_EMPTY",
				'no migration files match migrations/*.sql, but migrations/20250101000000_init, migrations/20250102000000_more hold migration.sql files (drizzle-kit v1\'s or Prisma\'s layout): set "migrations_pattern": "migrations/*/migration.sql" on binding "DB" (wrangler applies none of them without it).',
			],
		]);
	});

	it("follows the project's naming rule", () => {
		const files = { "migrations/0001_CamelCase.sql": "CREATE TABLE a (id INTEGER);\n" };
		expect(codes(check(files).raw)).toEqual(["CATALOG_BAD_NAME"]);
		expect(codes(check(files, { migrations: { naming: "wrangler" } }).raw)).toEqual([]);
	});

	it("marks acknowledged findings and reports unused acknowledgements, except of replay codes", () => {
		const result = check(
			{ "migrations/0001_a.sql": "BEGIN;\nCREATE TABLE a (id INTEGER);\nCOMMIT;\n" },
			{
				migrations: {
					acknowledge: [
						{
							code: "D1_TRANSACTION",
							files: ["0001_a.sql"],
							reason: "applied long ago, kept as is",
						},
						{ code: "D1_PRAGMA", files: ["0001_a.sql"], reason: "no such finding: unused" },
						{
							code: "REPLAY_FAILED",
							files: ["0001_a.sql"],
							reason: "only a replay can judge this",
						},
					],
				},
			},
		);
		expect(result.raw.map((f) => f.acknowledged)).toEqual([undefined, undefined]);
		expect(result.findings.map((f) => [f.code, f.acknowledged ?? null])).toEqual([
			["D1_TRANSACTION", "applied long ago, kept as is"],
			["D1_TRANSACTION", "applied long ago, kept as is"],
			["CONFIG_UNUSED_ACKNOWLEDGEMENT", null],
		]);
		expect(result.findings[2]).toMatchObject({ file: "workers-pipeline.jsonc" });
		expect(result.findings[2]?.message).toContain("D1_PRAGMA");
	});
});

describe("acknowledgesReplay()", () => {
	const ack = (code: string): Acknowledgement => ({ code, reason: "a reason long enough" });
	it.each([
		["REPLAY_FAILED", true],
		["REPLAY_DATA_FAILED", true],
		["REPLAY_DQS_STRING", true],
		["REPLAY_DROP_CASCADE", true],
		["SNAPSHOT_DRIFT", true],
		["SNAPSHOT_MISSING", true],
		["PARITY_MISMATCH", true],
		["REPLAY_*", true],
		["*", true],
		["D1_TRANSACTION", false],
		["D1_*", false],
		["CATALOG_*", false],
	])("%s → %s", (code, expected) => {
		expect(acknowledgesReplay(ack(code))).toBe(expected);
	});
});

describe("acknowledgeProjectFindings()", () => {
	const finding: Finding = {
		code: "D1_PRAGMA",
		severity: "error",
		file: "db/0001_a.sql",
		message: "m",
	};
	const settings = {
		migrations: {
			acknowledge: [
				{ code: "D1_PRAGMA", files: ["0001_a.sql"], reason: "kept on purpose here" },
				{ code: "D1_TRANSACTION", reason: "matches nothing at all" },
			],
		},
	};

	it.each([
		[
			"the project's settings file",
			(root: string) => path.join(root, "workers-pipeline.jsonc"),
			"workers-pipeline.jsonc",
		],
		[
			"a settings file elsewhere",
			(root: string) => path.join(root, "config", "pipeline.jsonc"),
			"config/pipeline.jsonc",
		],
		// Without a settings file the default name is the one to create.
		["no settings file", () => undefined, "workers-pipeline.jsonc"],
	])("names %s in an unused acknowledgement", (_, settingsPath, expected) => {
		const { config } = project({}, settings);
		const withPath = { ...config, settingsPath: settingsPath(config.root) };
		const { findings, unused } = acknowledgeProjectFindings(withPath, [finding], { dirs: ["db"] });
		expect(findings).toEqual([{ ...finding, acknowledged: "kept on purpose here" }]);
		expect(unused.map((u) => u.file)).toEqual([expected]);
	});

	it("resolves file globs against the dirs given, and reports only what reportsUnused selects", () => {
		const { config } = project({}, settings);
		expect(acknowledgeProjectFindings(config, [finding], { dirs: ["other"] }).findings).toEqual([
			finding,
		]);
		const { unused } = acknowledgeProjectFindings(config, [finding], {
			dirs: ["db"],
			reportsUnused: (a) => a.code !== "D1_TRANSACTION",
		});
		expect(unused).toEqual([]);
	});
});
