import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checksumOf, type Migration, parseCatalog } from "../../../ci/migrations/catalog.ts";
import {
	checkDrift,
	checkValidation,
	planRows,
	readRetiredMigrations,
	replaySchemaThrough,
	uncheckableSchema,
} from "../../../ci/migrations/drift.ts";
import { parseLedger } from "../../../ci/migrations/ledger.ts";
import {
	type AppliedStatus,
	type MigrationPlan,
	planMigrations,
} from "../../../ci/migrations/plan.ts";
import { replayMigrations } from "../../../ci/migrations/replay.ts";
import type { Schema } from "../../../ci/migrations/schema.ts";

const FILES = {
	"0001_a.sql": "CREATE TABLE a (id INTEGER);\n",
	"0002_b.sql": "CREATE TABLE b (id INTEGER);\n",
	"0003_c.sql": "ALTER TABLE a ADD COLUMN c TEXT;\n",
};
const catalog = (files: Record<string, string> = FILES, retired: string[] = []) =>
	parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired,
		files: Object.entries(files).map(([name, sql]) => ({ name, bytes: Buffer.from(sql) })),
	});
const cat = catalog();
const migration = (name: string, sql: string): Migration => ({
	name,
	path: `migrations/${name}`,
	number: Number(name.slice(0, 4)),
	checksum: checksumOf(sql),
	sql,
	readable: true,
	depends: [],
});
/** What a database with exactly these statements has (the "remote" side of a check). */
const schemaOf = (...sql: string[]): Schema =>
	replayMigrations(sql.map((s, i) => migration(`${String(i + 1).padStart(4, "0")}_x.sql`, s)))
		.schema;
const tables = (schema: Schema | undefined) => schema?.objects.map((o) => o.name);
/** A plan with these migrations applied, recorded by migrate unless listed as wrangler-only. */
const planOf = (applied: string[], wranglerOnly: string[] = [], c = cat): MigrationPlan =>
	planMigrations(
		c,
		parseLedger(
			applied.map((name, id) => ({ id: id + 1, name, applied_at: null })),
			applied
				.filter((n) => !wranglerOnly.includes(n))
				.map((name) => ({
					name,
					checksum: c.migrations.find((m) => m.name === name)?.checksum ?? "gone",
					recorded_by: "migrate",
				})),
		),
	);

describe("replaySchemaThrough()", () => {
	it.each([
		["nothing applied", [], []],
		["the first only", ["0001_a.sql"], ["a"]],
		["the first two", ["0001_a.sql", "0002_b.sql"], ["a", "b"]],
		["a set with a gap", ["0002_b.sql"], ["b"]],
	])("%s: the tables of exactly those migrations", (_, names, expected) => {
		expect(tables(replaySchemaThrough(cat, names, "d1_migrations"))).toEqual(expected);
	});

	it("replays in the ledger's order, not the catalog's", () => {
		// 0003 alters table a: before 0001 it fails, so no schema can be expected.
		expect(replaySchemaThrough(cat, ["0003_c.sql", "0001_a.sql"], "d1_migrations")).toBeUndefined();
		const through = replaySchemaThrough(cat, ["0001_a.sql", "0003_c.sql"], "d1_migrations");
		expect(through?.objects[0]?.sql).toContain("c TEXT");
	});

	it("is undefined when an applied migration has no file", () => {
		expect(replaySchemaThrough(cat, ["0001_a.sql", "0000_gone.sql"], "d1_migrations")).toBe(
			undefined,
		);
	});

	it("replays a retired migration from its retired file", () => {
		const retired = new Map([["0000_old.sql", migration("0000_old.sql", "CREATE TABLE old (x);")]]);
		expect(tables(replaySchemaThrough(cat, ["0000_old.sql", "0001_a.sql"], "t", retired))).toEqual([
			"a",
			"old",
		]);
	});

	it("never calls a migration with its file uncheckable, even beside a retired copy", () => {
		const both = catalog({ "0001_a.sql": FILES["0001_a.sql"] }, ["0001_a.sql.retired"]);
		expect(uncheckableSchema(both, ["0001_a.sql"], "preflight")).toEqual([]);
	});

	it("prefers the catalog's file over a retired one of the same name", () => {
		const retired = new Map([["0001_a.sql", migration("0001_a.sql", "CREATE TABLE stale (x);")]]);
		expect(tables(replaySchemaThrough(cat, ["0001_a.sql"], "t", retired))).toEqual(["a"]);
	});

	it("leaves the migrations table it is given out of the schema", () => {
		expect(tables(replaySchemaThrough(cat, ["0001_a.sql"], "my_ledger"))).toEqual(["a"]);
	});
});

describe("planRows()", () => {
	const row = (status: AppliedStatus) =>
		planRows({
			applied: [
				{
					name: "n",
					status,
					checksum: "c",
					recordedChecksum: undefined,
					appliedAt: null,
					audit: undefined,
				},
			],
			pending: [],
			toRecord: [],
			head: "n",
			findings: [],
		})[0];
	it.each([
		["verified", { status: "verified" }],
		["unrecorded", { status: "unrecorded" }],
		["retired", { status: "retired" }],
		["checksum-mismatch", { status: "failed", note: "checksum-mismatch" }],
		["missing-file", { status: "failed", note: "missing-file" }],
	] as const)("an applied %s migration is a %o row", (status, expected) => {
		expect(row(status)).toEqual({ name: "n", checksum: "c", ...expected });
	});

	it("lists applied rows, then pending ones with their checksums", () => {
		const rows = planRows(planOf(["0001_a.sql"], ["0001_a.sql"]));
		expect(rows).toEqual([
			{ name: "0001_a.sql", checksum: cat.migrations[0]?.checksum, status: "unrecorded" },
			{ name: "0002_b.sql", checksum: cat.migrations[1]?.checksum, status: "pending" },
			{ name: "0003_c.sql", checksum: cat.migrations[2]?.checksum, status: "pending" },
		]);
	});
});

describe("uncheckableSchema()", () => {
	const withRetired = catalog({ "0003_c.sql": "CREATE TABLE c (x);" }, [
		"0001_a.sql.retired",
		"0002_b.sql.retired",
	]);
	const retiredFile = new Map([["0001_a.sql", migration("0001_a.sql", "CREATE TABLE a (x);")]]);
	it.each([
		["every applied file present", ["0003_c.sql"], new Map(), []],
		["a deleted file (reported by the plan, not here)", ["0009_gone.sql"], new Map(), []],
		["a retired file that could be read", ["0001_a.sql", "0003_c.sql"], retiredFile, []],
		["a retired file unreadable", ["0001_a.sql"], new Map(), ["0001_a.sql is applied"]],
		[
			"two retired files unreadable",
			["0001_a.sql", "0002_b.sql"],
			new Map(),
			["0001_a.sql, 0002_b.sql are applied"],
		],
		[
			"one of two retired files read",
			["0001_a.sql", "0002_b.sql"],
			retiredFile,
			["0002_b.sql is applied"],
		],
	])("%s", (_, names, retired, expected) => {
		const findings = uncheckableSchema(withRetired, names, "preflight", retired);
		expect(findings.map((f) => f.message.match(/checked: (.*? applied)/)?.[1])).toEqual(expected);
		for (const f of findings)
			expect(f).toMatchObject({ code: "PREFLIGHT_SCHEMA_UNCHECKED", severity: "error" });
	});

	it.each([
		["preflight", "PREFLIGHT_SCHEMA_UNCHECKED"],
		["validate", "VALIDATE_SCHEMA_UNCHECKED"],
	] as const)("when %s, the code is %s", (when, code) => {
		expect(uncheckableSchema(withRetired, ["0001_a.sql"], when)[0]?.code).toBe(code);
	});
});

describe("checkDrift()", () => {
	const opts = { table: "d1_migrations" };
	it("finds nothing when the remote schema is the replay of the applied migrations", () => {
		const remote = schemaOf(FILES["0001_a.sql"], FILES["0002_b.sql"]);
		expect(checkDrift(cat, planOf(["0001_a.sql", "0002_b.sql"]), remote, opts)).toEqual([]);
	});

	it("compares with the applied migrations only, not the pending ones", () => {
		const remote = schemaOf(FILES["0001_a.sql"]);
		expect(checkDrift(cat, planOf(["0001_a.sql"]), remote, opts)).toEqual([]);
	});

	it.each([
		[
			"a table added by hand",
			schemaOf(FILES["0001_a.sql"], "CREATE TABLE extra (x);"),
			"+ CREATE TABLE extra",
		],
		["a table dropped by hand", schemaOf("CREATE TABLE z (x);"), "- CREATE TABLE a"],
	])("reports %s as drift, with the difference", (_, remote, line) => {
		const [finding, ...rest] = checkDrift(cat, planOf(["0001_a.sql"]), remote, opts);
		expect(rest).toEqual([]);
		expect(finding).toMatchObject({ code: "PREFLIGHT_SCHEMA_DRIFT", severity: "error" });
		expect(finding?.message).toContain(line);
		expect(finding?.message).not.toContain("without a checksum");
		expect(finding?.message).toMatch(/\nsomeone may have changed the database by hand\. /);
	});

	it("names the migrations wrangler applied without a checksum as possible culprits", () => {
		const remote = schemaOf("CREATE TABLE a (id INTEGER, edited TEXT);");
		const plan = planOf(["0001_a.sql", "0002_b.sql"], ["0001_a.sql", "0002_b.sql"]);
		expect(checkDrift(cat, plan, remote, opts)[0]?.message).toContain(
			"without a checksum (0001_a.sql, 0002_b.sql) may have been edited",
		);
	});

	it("says the schema is uncheckable when an applied migration is retired and unreadable", () => {
		const c = catalog({ "0002_b.sql": FILES["0002_b.sql"] }, ["0001_a.sql.retired"]);
		const plan = planOf(["0001_a.sql", "0002_b.sql"], [], c);
		expect(checkDrift(c, plan, schemaOf(FILES["0002_b.sql"]), opts).map((f) => f.code)).toEqual([
			"PREFLIGHT_SCHEMA_UNCHECKED",
		]);
		const retired = new Map([["0001_a.sql", migration("0001_a.sql", FILES["0001_a.sql"])]]);
		const remote = schemaOf(FILES["0001_a.sql"], FILES["0002_b.sql"]);
		expect(checkDrift(c, plan, remote, { ...opts, retired })).toEqual([]);
	});
});

describe("checkValidation()", () => {
	const opts = { table: "d1_migrations" };
	it.each([
		[
			"the same head",
			["0001_a.sql", "0002_b.sql"],
			schemaOf(FILES["0001_a.sql"], FILES["0002_b.sql"]),
			[],
		],
		[
			"a missing table",
			["0001_a.sql", "0002_b.sql"],
			schemaOf(FILES["0001_a.sql"]),
			["VALIDATE_SCHEMA_MISMATCH"],
		],
		[
			"an unexpected table",
			["0001_a.sql"],
			schemaOf(FILES["0001_a.sql"], FILES["0002_b.sql"]),
			["VALIDATE_SCHEMA_MISMATCH"],
		],
		[
			"a deleted file (no expectation, nothing retired)",
			["0000_gone.sql"],
			schemaOf("CREATE TABLE q (x);"),
			[],
		],
	])("%s", (_, names, remote, codes) => {
		expect(checkValidation(cat, names, remote, opts).map((f) => f.code)).toEqual(codes);
	});

	it("shows the difference, expected against remote", () => {
		const [finding] = checkValidation(
			cat,
			["0001_a.sql", "0002_b.sql"],
			schemaOf(FILES["0001_a.sql"]),
			opts,
		);
		expect(finding?.severity).toBe("error");
		expect(finding?.message).toContain("table b removed:\n    - CREATE TABLE b");
	});

	it("reports an applied, retired, unreadable migration as uncheckable", () => {
		const c = catalog({}, ["0001_a.sql.retired"]);
		expect(checkValidation(c, ["0001_a.sql"], schemaOf(), opts).map((f) => f.code)).toEqual([
			"VALIDATE_SCHEMA_UNCHECKED",
		]);
	});
});

describe("readRetiredMigrations()", () => {
	const root = mkdtempSync(path.join(tmpdir(), "wp-drift-"));
	afterAll(() => rmSync(root, { recursive: true, force: true }));
	mkdirSync(path.join(root, "db"));
	writeFileSync(path.join(root, "db", "0001_a.sql.retired"), "\uFEFFCREATE TABLE a (x);\r\n");
	writeFileSync(path.join(root, "0002_top.sql.retired"), "CREATE TABLE top (x);\n");

	it("reads each retired file, normalised as a migration, under the catalog's dir", () => {
		const c = { ...catalog({}, ["0001_a.sql.retired", "0009_unreadable.sql.retired"]), dir: "db" };
		const read = readRetiredMigrations(root, c);
		expect([...read.keys()]).toEqual(["0001_a.sql"]);
		expect(read.get("0001_a.sql")).toEqual({
			name: "0001_a.sql",
			path: "db/0001_a.sql.retired",
			number: 1,
			checksum: checksumOf("CREATE TABLE a (x);\n"),
			sql: "CREATE TABLE a (x);\n",
			readable: true,
			depends: [],
		});
	});

	it("reads from the root when the catalog's dir is the root", () => {
		const c = { ...catalog({}, ["0002_top.sql.retired"]), dir: "." };
		expect(readRetiredMigrations(root, c).get("0002_top.sql")).toMatchObject({
			path: "0002_top.sql.retired",
			number: 2,
			sql: "CREATE TABLE top (x);\n",
		});
	});
});
