import { chmodSync } from "node:fs";
import path from "node:path";
import { Minimatch } from "minimatch";
import { afterEach, describe, expect, it } from "vitest";
import {
	type Acknowledgement,
	type D1Database,
	NAMING_PRESETS,
} from "../../../ci/config/schema.ts";
import {
	acknowledgeFindings,
	applyAcknowledgements,
	type CatalogFile,
	checksumOf,
	compareMigrationNames,
	detectNaming,
	executableMigrationText,
	fileMatches,
	leadingNumber,
	normalizeMigrationText,
	parseCatalog,
	parseDepends,
	readCatalog,
} from "../../../ci/migrations/catalog.ts";
import type { FindingCode } from "../../../ci/report/codes.ts";
import type { Finding } from "../../../ci/report/model.ts";
import { type Files, makeProject, removeProjects } from "../../support/project.ts";

const file = (name: string, text = "CREATE TABLE t (x);\n"): CatalogFile => ({
	name,
	bytes: Buffer.from(text, "utf8"),
});

const parse = (files: CatalogFile[], retired: string[] = []) =>
	parseCatalog({ dir: "migrations", pattern: "migrations/*.sql", files, retired });

const brief = (f: Finding) => ({ code: f.code, severity: f.severity, file: f.file, line: f.line });

afterEach(removeProjects);

/** A project root with the given files under it (paths relative to the root). */
const tree = (files: Files) => makeProject({ files, prefix: "wp-catalog-" });

const database = (over: Partial<D1Database> = {}): D1Database => ({
	binding: "DB",
	databaseName: undefined,
	databaseId: undefined,
	migrationsDir: "migrations",
	migrationsTable: "d1_migrations",
	migrationsPattern: "migrations/*.sql",
	...over,
});

describe("parseCatalog()", () => {
	it("should report no findings for a clean, contiguous set", () => {
		const catalog = parse([
			file("0002_b.sql", "-- DEPENDS: 0001_a.sql\nCREATE TABLE b (x);\n"),
			file("0001_a.sql"),
			file("0003_c_2.sql"),
		]);
		expect(catalog.findings).toEqual([]);
		expect(catalog.migrations.map((m) => [m.name, m.path, m.number, m.readable])).toEqual([
			["0001_a.sql", "migrations/0001_a.sql", 1, true],
			["0002_b.sql", "migrations/0002_b.sql", 2, true],
			["0003_c_2.sql", "migrations/0003_c_2.sql", 3, true],
		]);
	});

	it.each([
		["1_x.sql", "too few digits"],
		["0001-x.sql", "dash instead of underscore"],
		["0001_X.sql", "upper-case name"],
		["00001_x.sql", "five digits"],
		["0001_.sql", "no name"],
		["0001_add users.sql", "space in the name"],
		["x.sql", "no number"],
	])("should report CATALOG_BAD_NAME for %s (%s)", (name) => {
		const findings = parse([file(name)]).findings;
		expect(findings.map(brief)).toEqual([
			{ code: "CATALOG_BAD_NAME", severity: "error", file: `migrations/${name}`, line: undefined },
		]);
		expect(findings[0]?.message).toContain("NNNN_snake_case.sql");
	});

	it("should point CATALOG_DUPLICATE_NUMBER at the second file and name the first", () => {
		const findings = parse([file("0001_a.sql"), file("0002_b.sql"), file("0002_c.sql")]).findings;
		expect(findings.map(brief)).toEqual([
			{
				code: "CATALOG_DUPLICATE_NUMBER",
				severity: "error",
				file: "migrations/0002_c.sql",
				line: undefined,
			},
		]);
		expect(findings[0]?.message).toContain("also used by 0002_b.sql");
	});

	it("should warn (not fail) on a CATALOG_NUMBER_GAP", () => {
		const findings = parse([file("0001_a.sql"), file("0004_d.sql")]).findings;
		expect(findings.map(brief)).toEqual([
			{
				code: "CATALOG_NUMBER_GAP",
				severity: "warning",
				file: "migrations/0004_d.sql",
				line: undefined,
			},
		]);
		expect(findings[0]?.message).toContain("from 1 (0001_a.sql) to 4");
	});

	it("should not treat timestamp prefixes as gaps", () => {
		const findings = parseCatalog({
			dir: "drizzle",
			pattern: "drizzle/*/migration.sql",
			retired: [],
			files: [file("20240101120000_a/migration.sql"), file("20240305090000_b/migration.sql")],
		}).findings;
		expect(findings.filter((f) => f.code === "CATALOG_NUMBER_GAP")).toEqual([]);
	});

	it("should report CATALOG_DEPENDS_MISSING with the DEPENDS line", () => {
		const findings = parse([
			file("0001_a.sql"),
			file("0002_b.sql", "CREATE TABLE b (x);\n\n-- DEPENDS: 0001_a.sql, 0009_nope.sql\n"),
		]).findings;
		expect(findings.map(brief)).toEqual([
			{
				code: "CATALOG_DEPENDS_MISSING",
				severity: "error",
				file: "migrations/0002_b.sql",
				line: 3,
			},
		]);
		expect(findings[0]?.message).toContain("0009_nope.sql, which is not a migration in migrations");
	});

	it.each([
		["a later migration", "0002_b.sql", "runs after this one"],
		["itself", "0001_a.sql", "is this migration"],
	])("should report CATALOG_DEPENDS_ORDER for a dependency on %s", (_, target, wording) => {
		const findings = parse([
			file("0001_a.sql", `-- just a comment\n--DEPENDS: ${target}\nCREATE TABLE a (x);\n`),
			file("0002_b.sql"),
		]).findings;
		expect(findings.map(brief)).toEqual([
			{ code: "CATALOG_DEPENDS_ORDER", severity: "error", file: "migrations/0001_a.sql", line: 2 },
		]);
		expect(findings[0]?.message).toContain(wording);
	});

	it("should say so when DEPENDS names a retired file", () => {
		const findings = parse(
			[file("0001_a.sql"), file("0003_c.sql", "-- DEPENDS: 0002_old.sql\nSELECT 1;\n")],
			["0002_old.sql.retired"],
		).findings;
		const depends = findings.filter((f) => f.code === "CATALOG_DEPENDS_MISSING");
		expect(depends.map(brief)).toEqual([
			{
				code: "CATALOG_DEPENDS_MISSING",
				severity: "error",
				file: "migrations/0003_c.sql",
				line: 1,
			},
		]);
		expect(depends[0]?.message).toContain("0002_old.sql, which is retired and never applied");
	});

	it("should list retired files in order and never as migrations", () => {
		const catalog = parse([file("0001_a.sql")], ["0010_late.sql.retired", "0002_old.sql.retired"]);
		expect(catalog.retired).toEqual(["0002_old.sql.retired", "0010_late.sql.retired"]);
		expect(catalog.migrations.map((m) => m.name)).toEqual(["0001_a.sql"]);
	});

	it.each([
		["", "empty"],
		["  \n\r\n\t\n", "whitespace only"],
		["\uFEFF", "a BOM only"],
		// What `wrangler d1 migrations create` writes, never filled in.
		["-- Migration number: 0001 \t 2026-12-02T04:00:00.000Z\n", "comments only"],
		["/* a\n;b */ -- c\n;\n", "block comments and a stray `;`"],
	])("should warn CATALOG_EMPTY_FILE for a file that is %#: %s", (text) => {
		const findings = parse([file("0001_a.sql", text)]).findings;
		expect(findings.map(brief)).toEqual([
			{
				code: "CATALOG_EMPTY_FILE",
				severity: "warning",
				file: "migrations/0001_a.sql",
				line: undefined,
			},
		]);
	});

	it.each([
		"SELECT '--';\n",
		"-- seed\nINSERT INTO t VALUES ('/*');\n",
		"/* x */ CREATE TABLE t (x);",
	])("should find statements next to comments in %j", (text) => {
		expect(parse([file("0001_a.sql", text)]).findings.map((f) => f.code)).not.toContain(
			"CATALOG_EMPTY_FILE",
		);
	});

	it("should report CATALOG_INVALID_UTF8 with the line of the first bad byte", () => {
		const bytes = Buffer.concat([
			Buffer.from("CREATE TABLE t (x);\n-- é is fine\nINSERT INTO t VALUES ('caf"),
			Buffer.from([0xe9]), // latin-1 é
			Buffer.from("');\n"),
		]);
		const catalog = parse([{ name: "0001_a.sql", bytes }]);
		expect(catalog.findings.map(brief)).toEqual([
			{ code: "CATALOG_INVALID_UTF8", severity: "error", file: "migrations/0001_a.sql", line: 3 },
		]);
		expect(catalog.findings[0]?.message).toContain(`byte ${bytes.indexOf(0xe9)}`);
		expect(catalog.migrations[0]?.readable).toBe(false);
	});

	// The first bad byte: a stray continuation byte, a lead byte cut short, a sequence cut by EOF.
	it.each([
		["a stray continuation byte", [0x61, 0x0a, 0x62, 0x80, 0x63], 3, 2],
		["a lead byte followed by ASCII", [0x61, 0x0a, 0x0a, 0xe9, 0x27, 0x0a], 3, 3],
		["a lead byte ending a line", [0x61, 0xe2, 0x82, 0x0a, 0x62], 1, 1],
		["a sequence cut off at the end", [0x61, 0x0a, 0xe2, 0x82], 2, 2],
		["an over-long encoding", [0x0a, 0xc0, 0xaf], 1, 2],
	])("should locate %s", (_, bytes, offset, line) => {
		const [finding] = parse([{ name: "0001_a.sql", bytes: Buffer.from(bytes) }]).findings;
		expect(finding?.code).toBe("CATALOG_INVALID_UTF8");
		expect(finding?.line).toBe(line);
		expect(finding?.message).toContain(`byte ${offset} is not valid UTF-8`);
	});

	it("should report CATALOG_UNREADABLE for a file without bytes, and keep it in order", () => {
		const catalog = parse([
			file("0002_b.sql"),
			{ name: "0001_a.sql", bytes: undefined, readError: "EACCES" },
		]);
		expect(catalog.findings.map(brief)).toEqual([
			{
				code: "CATALOG_UNREADABLE",
				severity: "error",
				file: "migrations/0001_a.sql",
				line: undefined,
			},
		]);
		expect(catalog.findings[0]?.message).toContain("EACCES");
		expect(catalog.migrations.map((m) => [m.name, m.readable])).toEqual([
			["0001_a.sql", false],
			["0002_b.sql", true],
		]);
	});

	it("should ignore DEPENDS lines of a file it cannot read", () => {
		const catalog = parse([
			{ name: "0001_a.sql", bytes: Buffer.from([0x2d, 0x2d, 0xff, 0x0a]) },
			file("0002_b.sql"),
		]);
		expect(catalog.migrations[0]?.depends).toEqual([]);
	});

	it("should use the migration name alone as path when the dir is the project root", () => {
		const catalog = parseCatalog({
			dir: ".",
			pattern: "*.sql",
			retired: [],
			files: [file("0001_a.sql")],
		});
		expect(catalog.migrations[0]?.path).toBe("0001_a.sql");
	});
});

describe("checksumOf()", () => {
	const lf = "CREATE TABLE t (\n\tx TEXT\n);\nINSERT INTO t VALUES ('a');\n";

	it.each([
		["CRLF", lf.replace(/\n/g, "\r\n")],
		["CR", lf.replace(/\n/g, "\r")],
		["BOM + LF", `\uFEFF${lf}`],
		["BOM + CRLF", `\uFEFF${lf.replace(/\n/g, "\r\n")}`],
	])("should give %s the same checksum as LF", (_, variant) => {
		expect(checksumOf(variant)).toBe(checksumOf(lf));
		expect(normalizeMigrationText(variant)).toBe(lf);
	});

	it.each([
		["a changed value", lf.replace("'a'", "'b'")],
		["a trailing space", lf.replace("TEXT", "TEXT ")],
		["a missing final newline", lf.trimEnd()],
		["a BOM in the middle", lf.replace("x TEXT", "x \uFEFFTEXT")],
	])("should change with %s", (_, edited) => {
		expect(checksumOf(edited)).not.toBe(checksumOf(lf));
	});

	it("should be a sha256 hex digest and equal what parseCatalog records", () => {
		const crlf = `\uFEFF${lf.replace(/\n/g, "\r\n")}`;
		const [migration] = parse([file("0001_a.sql", crlf)]).migrations;
		expect(checksumOf(lf)).toMatch(/^[0-9a-f]{64}$/);
		expect(migration?.checksum).toBe(checksumOf(lf));
		expect(migration?.sql).toBe(lf);
	});
});

describe("executableMigrationText()", () => {
	const crlf = (text: string) => text.replace(/\n/g, "\r\n");
	it.each([
		["a plain CRLF file", crlf("CREATE TABLE t (x TEXT);\n"), "CREATE TABLE t (x TEXT);\n"],
		[
			"a value spanning lines (kept, as wrangler sends it)",
			crlf("INSERT INTO t VALUES ('a\nb');\n"),
			"INSERT INTO t VALUES ('a\r\nb');\n",
		],
		[
			"a doubled quote inside the value",
			crlf("INSERT INTO t VALUES ('it''s\nx');\nSELECT 1;\n"),
			"INSERT INTO t VALUES ('it''s\r\nx');\nSELECT 1;\n",
		],
		[
			"quoted identifiers of every kind",
			crlf('CREATE TABLE "a\nb" ([c\nd] TEXT, `e\nf` TEXT);\n'),
			'CREATE TABLE "a\r\nb" ([c\r\nd] TEXT, `e\r\nf` TEXT);\n',
		],
		[
			"a quote inside a comment opens no value",
			crlf("-- don't\nCREATE TABLE t (x);\n/* it's\n */ SELECT 'v\nw';\n"),
			"-- don't\nCREATE TABLE t (x);\n/* it's\n */ SELECT 'v\r\nw';\n",
		],
		["a BOM", "\uFEFFSELECT 1;\r\n", "SELECT 1;\n"],
		["an LF file, untouched", "SELECT 'a\nb';\n", "SELECT 'a\nb';\n"],
	])("%s", (_, text, expected) => {
		expect(executableMigrationText(text)).toBe(expected);
	});

	it("is what parseCatalog executes, while the checksum stays that of the LF text", () => {
		const text = crlf("INSERT INTO t VALUES ('a\nb');\n");
		const [migration] = parse([file("0001_a.sql", text)]).migrations;
		expect(migration?.sql).toBe("INSERT INTO t VALUES ('a\r\nb');\n");
		expect(migration?.checksum).toBe(checksumOf("INSERT INTO t VALUES ('a\nb');\n"));
	});
});

describe("compareMigrationNames()", () => {
	const sorted = (names: string[]) => [...names].sort(compareMigrationNames);

	it("should order by numeric prefix, then by string", () => {
		expect(sorted(["10_a.sql", "9_a.sql", "0002_b.sql", "0002_a.sql", "1_z.sql"])).toEqual([
			"1_z.sql",
			"0002_a.sql",
			"0002_b.sql",
			"9_a.sql",
			"10_a.sql",
		]);
	});

	it("should put equal numbers in plain string order, whatever their padding", () => {
		// parseInt("002") === parseInt("0002"): the string order decides, as in wrangler.
		expect(sorted(["002_a.sql", "0002_b.sql"])).toEqual(["0002_b.sql", "002_a.sql"]);
	});

	it("should put unnumbered files last, in string order", () => {
		expect(sorted(["init.sql", "0001_a.sql", "Add.sql", "0002_b.sql"])).toEqual([
			"0001_a.sql",
			"0002_b.sql",
			"Add.sql",
			"init.sql",
		]);
	});

	it("should compare nested drizzle-style names segment by segment", () => {
		expect(
			sorted([
				"20240305090000_b/migration.sql",
				"9_old/migration.sql",
				"20240101120000_a/migration.sql",
				"snapshot/migration.sql",
			]),
		).toEqual([
			"9_old/migration.sql",
			"20240101120000_a/migration.sql",
			"20240305090000_b/migration.sql",
			"snapshot/migration.sql",
		]);
	});

	it("should put a shorter path before a longer one with the same segments", () => {
		expect(sorted(["0001_a/x/migration.sql", "0001_a/migration.sql"])).toEqual([
			"0001_a/migration.sql",
			"0001_a/x/migration.sql",
		]);
	});

	it.each([
		["0001_a.sql", 1],
		["10_a.sql", 10],
		["0001-x.sql", 1],
		["20240101120000_a", 20240101120000],
		["init.sql", undefined],
		["_0001.sql", undefined],
	])("leadingNumber(%j) should be %j, like wrangler's parseInt", (segment, expected) => {
		expect(leadingNumber(segment)).toBe(expected);
	});
});

describe("parseDepends()", () => {
	it("should read every name on every DEPENDS line, case-insensitively, with its line", () => {
		const sql =
			"-- DEPENDS: 0001_a.sql 0002_b.sql\nSELECT 1;\n  --depends:0003_c.sql,0004_d.sql\n-- not DEPENDS: 0005_e.sql\n";
		expect(parseDepends(sql)).toEqual([
			{ name: "0001_a.sql", line: 1 },
			{ name: "0002_b.sql", line: 1 },
			{ name: "0003_c.sql", line: 3 },
			{ name: "0004_d.sql", line: 3 },
		]);
	});
});

describe("readCatalog()", () => {
	it("should select *.sql, list *.sql.retired apart, and skip other files and dotfiles", () => {
		const root = tree({
			"migrations/0001_a.sql": "SELECT 1;\n",
			"migrations/0002_b.sql.retired": "SELECT 2;\n",
			"migrations/0003_c.sql": "SELECT 3;\n",
			"migrations/README.md": "notes",
			"migrations/.0004_hidden.sql": "SELECT 4;\n",
			"migrations/sub/0005_nested.sql": "SELECT 5;\n",
		});
		const input = readCatalog({ root, database: database() });
		expect(input.files.map((f) => f.name).sort()).toEqual(["0001_a.sql", "0003_c.sql"]);
		expect(input.retired).toEqual(["0002_b.sql.retired"]);
		expect(input.dir).toBe("migrations");
	});

	it("should not select upper-case .SQL files, exactly like wrangler's minimatch", () => {
		const root = tree({
			"migrations/0001_a.sql": "SELECT 1;\n",
			"migrations/0002_b.SQL": "SELECT 2;\n",
			"migrations/0003_c.Sql": "SELECT 3;\n",
		});
		const names = ["0001_a.sql", "0002_b.SQL", "0003_c.Sql"];
		const wrangler = new Minimatch("*.sql", { dot: false });
		const selected = readCatalog({ root, database: database() }).files.map((f) => f.name);
		expect(selected).toEqual(names.filter((n) => wrangler.match(n)));
		expect(selected).toEqual(["0001_a.sql"]);
	});

	it("should honour a nested migrations_pattern (drizzle-kit layout) in wrangler's order", () => {
		const root = tree({
			"drizzle/20240305090000_b/migration.sql": "SELECT 2;\n",
			"drizzle/20240101120000_a/migration.sql": "SELECT 1;\n",
			"drizzle/20240101120000_a/snapshot.json": "{}",
			"drizzle/meta/_journal.json": "{}",
		});
		const pattern = "drizzle/*/migration.sql";
		const input = readCatalog({
			root,
			database: database({ migrationsDir: "drizzle", migrationsPattern: pattern }),
		});
		const catalog = parseCatalog(input);
		expect(catalog.migrations.map((m) => m.path)).toEqual([
			"drizzle/20240101120000_a/migration.sql",
			"drizzle/20240305090000_b/migration.sql",
		]);
		const wrangler = new Minimatch("*/migration.sql", { dot: false });
		expect(input.files.every((f) => wrangler.match(f.name))).toBe(true);
		// The default naming rules still apply: these names are for acknowledgements to accept.
		expect(catalog.findings.every((f) => f.code === "CATALOG_BAD_NAME")).toBe(true);
	});

	it.each([
		["missing", {}, "not found"],
		["a file", { migrations: "not a dir" }, "is not a directory"],
	])("should throw E_MIGRATIONS_DIR when the dir is %s", (_, files, wording) => {
		const root = tree(files);
		expect(() => readCatalog({ root, database: database() })).toThrow(
			expect.objectContaining({
				code: "E_MIGRATIONS_DIR",
				message: expect.stringContaining(wording),
			}),
		);
	});

	it.each([
		[{ "drizzle/0000_init.sql": "SELECT 1;\n" }, "drizzle"],
		[{ "prisma/migrations/20240101000000_init/migration.sql": "SELECT 1;\n" }, "prisma/migrations"],
	])("should point a missing dir at a usual one holding the history (%j)", (files, found) => {
		const root = tree(files);
		expect(() => readCatalog({ root, database: database() })).toThrow(
			`Migrations directory migrations not found in ${root} (D1 binding "DB"). ${found} holds .sql files: if that is this binding's history, set "migrations_dir" to it (relative to the wrangler config).`,
		);
	});

	it.each([
		[["1700000000_init.sql", "1700000100_more.sql"], ': every name here fits "timestamp").'],
		[
			["20240101000000_init/migration.sql"],
			': every name here fits "drizzle-kit-v1" (or "prisma", the same layout)).',
		],
		// No preset fits every name: nothing to suggest.
		[["1700000000_init.sql", "init.sql"], "(or set migrations.naming to your tool's layout)."],
	])(
		"should name the preset a whole history fits when it breaks the rule (%j)",
		(names, ending) => {
			const catalog = parseCatalog({
				dir: "migrations",
				pattern: "migrations/*.sql",
				retired: [],
				files: names.map((name) => ({ name, bytes: Buffer.from("SELECT 1;\n") })),
			});
			const messages = catalog.findings
				.filter((f) => f.code === "CATALOG_BAD_NAME")
				.map((f) => f.message);
			expect(messages.length).toBeGreaterThan(0);
			for (const message of messages) expect(message.endsWith(ending), message).toBe(true);
		},
	);

	const isRoot = process.getuid?.() === 0;
	it.skipIf(isRoot)("should record an unreadable file (chmod 000) instead of throwing", () => {
		const root = tree({ "migrations/0001_a.sql": "SELECT 1;\n" });
		chmodSync(path.join(root, "migrations/0001_a.sql"), 0o000);
		const catalog = parseCatalog(readCatalog({ root, database: database() }));
		expect(catalog.findings.map(brief)).toEqual([
			{
				code: "CATALOG_UNREADABLE",
				severity: "error",
				file: "migrations/0001_a.sql",
				line: undefined,
			},
		]);
		expect(catalog.findings[0]?.message).toContain("EACCES");
	});
	if (isRoot) {
		// root reads a chmod 000 file anyway; the parseCatalog test above covers `bytes: undefined`.
		console.info("readCatalog() chmod 000 test skipped: running as root, which can read the file");
	}
});

describe("applyAcknowledgements()", () => {
	const ack = (code: string, files: string[]): Acknowledgement => ({
		code,
		files,
		reason: "already applied in production in 2024",
	});
	const options = { dir: "migrations", configFile: "workers-pipeline.jsonc" };

	it("should mark acknowledged findings with the reason and leave others alone", () => {
		const { findings } = parse([file("0001_a.sql"), file("2_b.sql"), file("3-c.sql")]);
		const marked = applyAcknowledgements(findings, [ack("CATALOG_BAD_NAME", ["2_b.sql"])], options);
		expect(marked.map((f) => [f.code, f.file, f.acknowledged])).toEqual([
			["CATALOG_BAD_NAME", "migrations/2_b.sql", "already applied in production in 2024"],
			["CATALOG_BAD_NAME", "migrations/3-c.sql", undefined],
		]);
	});

	it("should accept file names given with the migrations dir", () => {
		const { findings } = parse([file("0001_a.sql"), file("0001_b.sql")]);
		const marked = applyAcknowledgements(
			findings,
			[ack("CATALOG_DUPLICATE_NUMBER", ["migrations/0001_b.sql"])],
			options,
		);
		expect(marked.map((f) => Boolean(f.acknowledged))).toEqual([true]);
	});

	it("should not acknowledge a finding of another code for the same file", () => {
		const { findings } = parse([file("0001_a.sql"), file("0001_b.sql")]);
		const marked = applyAcknowledgements(
			findings,
			[ack("CATALOG_BAD_NAME", ["0001_b.sql"])],
			options,
		);
		expect(marked.map((f) => [f.code, f.file, f.acknowledged])).toEqual([
			["CATALOG_DUPLICATE_NUMBER", "migrations/0001_b.sql", undefined],
			["CONFIG_UNUSED_ACKNOWLEDGEMENT", "workers-pipeline.jsonc", undefined],
		]);
	});

	it("should report each unused acknowledged file as CONFIG_UNUSED_ACKNOWLEDGEMENT", () => {
		const { findings } = parse([file("0001_a.sql"), file("2_b.sql")]);
		const marked = applyAcknowledgements(
			findings,
			[
				ack("CATALOG_BAD_NAME", ["2_b.sql", "3_gone.sql"]),
				ack("CATALOG_NUMBER_GAP", ["0009_x.sql"]),
			],
			options,
		);
		const unused = marked.filter((f) => f.code === "CONFIG_UNUSED_ACKNOWLEDGEMENT");
		expect(unused.map((f) => [f.severity, f.file])).toEqual([
			["warning", "workers-pipeline.jsonc"],
			["warning", "workers-pipeline.jsonc"],
		]);
		expect(unused.map((f) => f.message)).toEqual([
			expect.stringContaining("CATALOG_BAD_NAME for 3_gone.sql matches no finding"),
			expect.stringContaining("CATALOG_NUMBER_GAP for 0009_x.sql matches no finding"),
		]);
	});

	it("should not mutate the findings it was given", () => {
		const { findings } = parse([file("2_b.sql")]);
		applyAcknowledgements(findings, [ack("CATALOG_BAD_NAME", ["2_b.sql"])], options);
		expect(findings[0]?.acknowledged).toBeUndefined();
	});
});

describe("acknowledgeFindings()", () => {
	const finding = (code: string, file?: string): Finding => ({
		code: code as FindingCode,
		severity: "error",
		message: "m",
		...(file ? { file } : {}),
	});
	const reason = "applied to production before adoption";
	const options = { dirs: ["migrations"], configFile: "workers-pipeline.jsonc" };

	it.each([
		["an exact code and file", "CATALOG_BAD_NAME", ["2_b.sql"], true],
		["a code glob", "CATALOG_*", ["2_b.sql"], true],
		["every code", "*", ["2_b.sql"], true],
		["a file glob relative to the dir", "CATALOG_BAD_NAME", ["*_b.sql"], true],
		["a file glob relative to the project", "CATALOG_BAD_NAME", ["migrations/**"], true],
		["no files (every file)", "CATALOG_BAD_NAME", undefined, true],
		["another code's glob", "D1_*", ["2_b.sql"], false],
		["a glob for other files", "CATALOG_BAD_NAME", ["0*.sql"], false],
	])("should match %s", (_, code, files, matches) => {
		const { findings, unused } = acknowledgeFindings(
			[finding("CATALOG_BAD_NAME", "migrations/2_b.sql")],
			[{ code, ...(files ? { files } : {}), reason }],
			options,
		);
		expect(findings[0]?.acknowledged).toBe(matches ? reason : undefined);
		expect(unused).toHaveLength(matches ? 0 : 1);
	});

	it("should count every acknowledgement a finding matches as used, not only the first", () => {
		const { findings, unused } = acknowledgeFindings(
			[finding("REPLAY_DROP_CASCADE", "migrations/0004_rebuild.sql")],
			[
				{ code: "REPLAY_*", files: ["0004_rebuild.sql"], reason: "first: rebuilt before adoption" },
				{ code: "REPLAY_DROP_CASCADE", reason: "second: the children were copied aside" },
			],
			options,
		);
		expect(findings[0]?.acknowledged).toBe("first: rebuilt before adoption");
		expect(unused).toEqual([]);
	});

	it("should match files of any of several migrations dirs, and a finding without a file only by `*`", () => {
		const { findings } = acknowledgeFindings(
			[finding("D1_PRAGMA", "db/other/0001_a.sql"), finding("PARITY_MISMATCH"), finding("BIOME")],
			[
				{ code: "D1_PRAGMA", files: ["0001_a.sql"], reason },
				{ code: "PARITY_MISMATCH", files: ["*"], reason },
			],
			{ ...options, dirs: ["migrations", "db/other"] },
		);
		expect(findings.map((f) => Boolean(f.acknowledged))).toEqual([true, true, false]);
	});

	it("should report unused acknowledgements only for those the caller judges", () => {
		const { unused } = acknowledgeFindings(
			[],
			[
				{ code: "REPLAY_DROP_CASCADE", files: ["0004_x.sql"], reason },
				{ code: "CATALOG_BAD_NAME", files: ["1_x.sql"], reason },
			],
			{ ...options, reportsUnused: (ack) => !ack.code.startsWith("REPLAY_") },
		);
		expect(unused.map((f) => f.message)).toEqual([
			expect.stringContaining("CATALOG_BAD_NAME for 1_x.sql matches no finding"),
		]);
	});
});

describe("parseCatalog() naming rules", () => {
	const corpusNames: [string, string[]][] = [
		["strict", ["0000_hard_nick_fury.sql", "0001_create_database.sql"]],
		["wrangler", ["0001_add-unique-following.sql", "0008_add_server-settings.sql"]],
		// What `wrangler d1 migrations create DB "<message>"` writes: any character but a path separator.
		["wrangler", ["0004_ajout_élève.sql", "0005_fix_user's_email.sql", "0006_v2_(hotfix).sql"]],
		["wrangler", ["9999_last_four.sql", "10000_five_digits.sql"]],
		["drizzle-kit", ["0000_living_forge.sql", "0006_gigantic_shinko_yamashiro.sql"]],
		[
			"drizzle-kit-v1",
			["20250110001634_init/migration.sql", "20250113063026_add_emailVerified/migration.sql"],
		],
		["prisma", ["20240101120000_init/migration.sql"]],
		["timestamp", ["1700000000_init.sql", "20240101120000_add_users.sql"]],
	];

	it.each(corpusNames)("should accept %s names under that preset", (preset, names) => {
		const catalog = parseCatalog(
			{
				dir: "migrations",
				pattern: "migrations/**",
				files: names.map((n) => file(n)),
				retired: [],
			},
			{ naming: NAMING_PRESETS[preset as keyof typeof NAMING_PRESETS] },
		);
		expect(catalog.findings.filter((f) => f.code === "CATALOG_BAD_NAME")).toEqual([]);
	});

	it.each([
		["strict", "0001_add-users.sql"],
		["strict", "20250110001634_init/migration.sql"],
		["drizzle-kit-v1", "0001_init.sql"],
		["drizzle-kit-v1", "2025011000163_init/migration.sql"],
		["timestamp", "0001_init.sql"],
	])("should refuse under %s the name %s, naming the rule", (preset, name) => {
		const catalog = parseCatalog(
			{ dir: "migrations", pattern: "migrations/**", files: [file(name)], retired: [] },
			{ naming: NAMING_PRESETS[preset as keyof typeof NAMING_PRESETS] },
		);
		const bad = catalog.findings.filter((f) => f.code === "CATALOG_BAD_NAME");
		expect(bad).toHaveLength(1);
		expect(bad[0]?.message).toContain(
			NAMING_PRESETS[preset as keyof typeof NAMING_PRESETS].description,
		);
	});

	it("should apply a project's own regular expression", () => {
		const naming = { pattern: "^V\\d+__\\w+\\.sql$", description: "Flyway's V<n>__<name>.sql" };
		const catalog = parseCatalog(
			{
				dir: "migrations",
				pattern: "migrations/*.sql",
				files: [file("V1__init.sql"), file("0002_x.sql")],
				retired: [],
			},
			{ naming },
		);
		expect(
			catalog.findings.filter((f) => f.code === "CATALOG_BAD_NAME").map((f) => f.file),
		).toEqual(["migrations/0002_x.sql"]);
	});
});

describe("detectNaming()", () => {
	it.each([
		[[], {}, "strict"],
		[["0000_hard_nick_fury.sql", "0001_tiresome_squadron.sql"], {}, "strict"],
		[["0000_hard_nick_fury.sql"], { drizzleJournal: true }, "drizzle-kit"],
		[["0000_initial.sql", "0001_add-unique-following.sql"], {}, "wrangler"],
		[["0000_initial.sql", "0001_add-users.sql"], { drizzleJournal: true }, "drizzle-kit"],
		[["0000_initial.sql", "0008_add_server-settings.v2.sql"], {}, "wrangler"],
		[["20250110001634_init/migration.sql"], {}, "drizzle-kit-v1"],
		[["20250110001634_init/migration.sql"], { prismaLock: true }, "prisma"],
		[["1700000000_init.sql"], {}, "timestamp"],
		// matrix-workers: 3-digit names fit no preset; strict is kept and the names acknowledged.
		[["002_rooms.sql", "schema.sql"], {}, "strict"],
	] as const)("should pick for %j (%j) the preset %s", (names, hints, expected) => {
		expect(detectNaming(names, hints)).toBe(expected);
	});
});

describe("catalog edges", () => {
	it.each([
		[
			"an unnumbered name sorting before digits goes last",
			["(init).sql", "0001_a.sql"],
			["0001_a.sql", "(init).sql"],
		],
		[
			"a numbered name goes first, whatever the order given",
			["0001_a.sql", "(init).sql"],
			["0001_a.sql", "(init).sql"],
		],
		[
			"a directory before the files inside it",
			["0001_a/migration.sql", "0001_a"],
			["0001_a", "0001_a/migration.sql"],
		],
	])("compareMigrationNames: %s", (_, names, expected) => {
		expect([...names].sort(compareMigrationNames)).toEqual(expected);
	});

	it.each([
		["init_a.sql", "init_a.sql", 0],
		["init_b.sql", "init_a.sql", 1],
		["init_a.sql", "init_b.sql", -1],
		["0001_a", "0001_a/migration.sql", -1],
		["0001_a/x/y.sql", "0001_a/x", 1],
	])("compareMigrationNames(%j, %j) has the sign of %i", (a, b, sign) => {
		expect(Math.sign(compareMigrationNames(a, b))).toBe(sign);
	});

	it.each([
		["9999 after 0001 is a gap", ["0001_a.sql", "9999_b.sql"], ["CATALOG_NUMBER_GAP"]],
		["10000 (a timestamp) after 0001 is none", ["0001_a.sql", "10000_b.sql"], []],
		["consecutive numbers", ["0001_a.sql", "0002_b.sql"], []],
		["unnumbered files are no duplicates of each other", ["init.sql", "seed.sql"], []],
	])("%s", (_, names, codes) => {
		const catalog = parseCatalog(
			{ dir: "m", pattern: "m/*.sql", retired: [], files: names.map((n) => file(n)) },
			{ naming: { pattern: ".*", description: "anything" } },
		);
		expect(catalog.findings.map((f) => f.code)).toEqual(codes);
	});

	it("says what to do with an empty migration", () => {
		const [finding] = parse([file("0001_a.sql", "  \n")]).findings;
		expect(finding).toMatchObject({
			code: "CATALOG_EMPTY_FILE",
			severity: "warning",
			message: "the migration is empty; remove it or add its statements.",
		});
	});

	it("gives an unreadable file empty SQL and no dependencies", () => {
		const [migration] = parse([{ name: "0001_a.sql", bytes: undefined }]).migrations;
		expect(migration).toMatchObject({
			sql: "",
			checksum: checksumOf(""),
			readable: false,
			depends: [],
		});
	});

	it("points at a bad byte after valid multi-byte characters", () => {
		const bytes = Buffer.concat([Buffer.from("é€", "utf8"), Buffer.from([0xff])]);
		expect(parse([{ name: "0001_a.sql", bytes }]).findings[0]?.message).toContain(
			"byte 5 is not valid UTF-8",
		);
	});

	it("lists no hidden retired file", () => {
		const root = tree({
			"migrations/0001_a.sql": "SELECT 1;\n",
			"migrations/.0002_b.sql.retired": "SELECT 2;\n",
			"migrations/0003_c.sql.retired": "SELECT 3;\n",
		});
		expect(readCatalog({ root, database: database() }).retired).toEqual(["0003_c.sql.retired"]);
	});

	it.each([
		[
			"more names fit wrangler than strict",
			["0001_Add.sql", "0002_b.sql", "schema.sql"],
			{},
			"wrangler",
		],
		[
			"a drizzle journal, names drizzle-kit does not allow",
			["0008_add_server-settings.v2.sql"],
			{ drizzleJournal: true },
			"wrangler",
		],
		["a Prisma lock beside flat names", ["0001_a.sql"], { prismaLock: true }, "strict"],
	] as const)("detectNaming: %s", (_, names, hints, expected) => {
		expect(detectNaming(names, hints)).toBe(expected);
	});
});

describe("fileMatches() and unmatched acknowledgements", () => {
	it.each([
		["*", undefined, ["migrations"], true],
		["**", undefined, ["migrations"], true],
		["0001_a.sql", undefined, ["migrations"], false],
		["0001_a.sql", "migrations/0001_a.sql", ["migrations"], true],
		["0001_a.sql", "0001_a.sql", ["."], true],
		["0001_a.sql", "other/0001_a.sql", ["migrations"], false],
		// Taken literally first: a name with glob characters still matches itself.
		["migrations/[x].sql", "migrations/[x].sql", [], true],
		["*.sql", "migrations/a.sql", [".", "migrations"], true],
	])("fileMatches(%j, %j, %j) → %s", (glob, f, dirs, expected) => {
		expect(fileMatches(glob, f, dirs)).toBe(expected);
	});

	it("leaves an unacknowledged finding as it was, and reports an unused acknowledgement of every file", () => {
		const finding: Finding = {
			code: "D1_PRAGMA",
			severity: "error",
			message: "m",
			file: "migrations/a.sql",
		};
		const { findings, unused } = acknowledgeFindings(
			[finding],
			[{ code: "D1_TRANSACTION", reason: "nothing matches this one" }],
			{ dirs: ["migrations"], configFile: "workers-pipeline.jsonc" },
		);
		expect(findings[0]).toBe(finding);
		expect(findings[0]).not.toHaveProperty("acknowledged");
		expect(unused.map((u) => u.message)).toEqual([
			"acknowledgement of D1_TRANSACTION for (every file) matches no finding; remove it from migrations.acknowledge.",
		]);
	});

	it("says a code no finding has is a typo, with the closest code, and leaves globs alone", () => {
		const { unused } = acknowledgeFindings(
			[],
			[
				{ code: "D1_PRGMA", reason: "typed in a hurry" },
				{ code: "NOT_A_THING_AT_ALL", reason: "far from every code" },
				{ code: "D1_*", reason: "a glob matching none today" },
			],
			{ dirs: ["migrations"], configFile: "workers-pipeline.jsonc" },
		);
		expect(unused.map((u) => u.message)).toEqual([
			expect.stringMatching(
				/D1_PRGMA is no finding code \(did you mean D1_PRAGMA\?\), so it acknowledges nothing/,
			),
			expect.stringMatching(/NOT_A_THING_AT_ALL is no finding code, so it acknowledges nothing/),
			"acknowledgement of D1_* for (every file) matches no finding; remove it from migrations.acknowledge.",
		]);
	});
});
