import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { D1_MAX_STATEMENT_BYTES } from "../../../ci/constants.ts";
import {
	D1_ALLOWED_PRAGMAS,
	formatLintFinding,
	LINT_RULES,
	lintMigration,
} from "../../../ci/migrations/lint.ts";
import type { Finding } from "../../../ci/report/model.ts";

const FILE = "0001_test.sql";
const lint = (content: string) => lintMigration({ name: FILE, content });
const codes = (content: string) => lint(content).map((f) => f.code);
const where = (f: Finding) => [f.code, f.severity, f.line, f.column];

describe("lintMigration()", () => {
	it.each([
		["D1_TRANSACTION", "error", "CREATE TABLE a (x);\nBEGIN TRANSACTION;", 2, 1],
		["D1_TRANSACTION", "error", "  COMMIT;", 1, 3],
		["D1_TRANSACTION", "error", "end transaction;", 1, 1],
		["D1_TRANSACTION", "error", "ROLLBACK TO sp1;", 1, 1],
		["D1_TRANSACTION", "error", "SAVEPOINT sp1;", 1, 1],
		["D1_TRANSACTION", "error", "RELEASE sp1;", 1, 1],
		["D1_PRAGMA", "error", "PRAGMA journal_mode = WAL;", 1, 8],
		["D1_PRAGMA", "error", "PRAGMA main.synchronous = OFF;", 1, 13],
		["D1_FOREIGN_KEYS_OFF", "error", "PRAGMA foreign_keys = OFF;", 1, 23],
		["D1_FOREIGN_KEYS_OFF", "error", "PRAGMA foreign_keys=0;", 1, 21],
		["D1_FOREIGN_KEYS_OFF", "error", "pragma FOREIGN_KEYS = false;", 1, 23],
		["D1_PRAGMA", "error", "PRAGMA temp.foreign_keys = ON;", 1, 13],
		["D1_PRAGMA", "error", "PRAGMA table_info;", 1, 8],
		["D1_PRAGMA", "error", "PRAGMA table_info(_cf_KV);", 1, 8],
		["D1_PRAGMA", "error", "PRAGMA foreign_keys = maybe;", 1, 8],
		["D1_FOREIGN_KEYS_OFF", "error", "PRAGMA foreign_keys('no');", 1, 21],
		["D1_RESERVED_NAME", "error", "CREATE TABLE _cf_stuff (x);", 1, 14],
		["D1_RESERVED_NAME", "error", 'CREATE TABLE IF NOT EXISTS main."_CF_kv" (x);', 1, 33],
		["D1_RESERVED_NAME", "error", "CREATE UNIQUE INDEX _cf_i ON t (x);", 1, 21],
		["D1_RESERVED_NAME", "error", "CREATE VIEW _Cf_v AS SELECT 1;", 1, 13],
		["D1_RESERVED_NAME", "error", "ALTER TABLE t RENAME TO _cf_t;", 1, 25],
		["D1_FUNCTION", "error", "INSERT INTO meta (v) SELECT sqlite_version();", 1, 29],
		["D1_FUNCTION", "error", "UPDATE t SET x = POWER(2, 3) WHERE 1;", 1, 18],
		// Allowed by workerd's authorizer, but its SQLite is built without SQLITE_SOUNDEX.
		["D1_FUNCTION", "error", "CREATE INDEX p_sx ON people (soundex(last_name));", 1, 30],
		[
			"D1_LIMIT",
			"error",
			`CREATE TABLE wide (${Array.from({ length: 101 }, (_, n) => `c${n}`).join(", ")});`,
			1,
			14,
		],
		[
			"D1_LIMIT",
			"error",
			`INSERT INTO t (x) ${Array.from({ length: 7 }, (_, n) => `SELECT ${n}`).join(" UNION ALL ")};`,
			1,
			104,
		],
		["D1_ADD_NOT_NULL", "warning", "ALTER TABLE users ADD COLUMN plan TEXT NOT NULL;", 1, 40],
		["D1_ADD_NOT_NULL", "warning", "ALTER TABLE users ADD plan TEXT NOT NULL DEFAULT NULL;", 1, 33],
		["D1_ATTACH", "error", "ATTACH DATABASE 'x.db' AS x;", 1, 1],
		["D1_ATTACH", "error", "DETACH x;", 1, 1],
		["D1_TEMP_OBJECT", "error", "CREATE TEMP TABLE scratch (x);", 1, 8],
		["D1_TEMP_OBJECT", "error", "CREATE TEMPORARY VIEW v AS SELECT 1;", 1, 8],
		["D1_TEMP_OBJECT", "error", "CREATE TABLE temp.scratch (x);", 1, 14],
		["D1_VIRTUAL_TABLE", "error", "CREATE VIRTUAL TABLE docs USING fts4(body);", 1, 33],
		["D1_DESTRUCTIVE", "warning", "DROP TABLE IF EXISTS users;", 1, 1],
		["D1_DESTRUCTIVE", "warning", "ALTER TABLE users DROP COLUMN email;", 1, 19],
		["D1_DESTRUCTIVE", "warning", "DELETE FROM sessions;", 1, 1],
		[
			"D1_DESTRUCTIVE",
			"warning",
			"UPDATE users SET plan = (SELECT p FROM d WHERE d.id = 1);",
			1,
			1,
		],
		["D1_DESTRUCTIVE", "warning", "WITH d AS (SELECT 1 WHERE 1) DELETE FROM t;", 1, 30],
		[
			"D1_MISSING_SEMICOLON",
			"error",
			"CREATE TABLE a (x);\nCREATE TABLE b (\n  y\n) -- done",
			4,
			1,
		],
		["SQL_UNTERMINATED", "error", "INSERT INTO t VALUES ('oops);", 1, 23],
		["SQL_UNTERMINATED", "error", 'SELECT "col;', 1, 8],
		["SQL_UNTERMINATED", "error", "SELECT 1;\n/* never closed", 2, 1],
		[
			"LINT_SUPPRESSION_REASON",
			"error",
			"-- workers-pipeline-disable D1_DESTRUCTIVE\nSELECT 1;",
			1,
			1,
		],
		[
			"LINT_SUPPRESSION_UNKNOWN",
			"error",
			"SELECT 1; -- workers-pipeline-disable D1_NOPE: x",
			1,
			11,
		],
	])("reports %s (%s) for %j at %i:%i", (code, severity, sql, line, column) => {
		const findings = lint(sql);
		expect(findings.map(where)).toContainEqual([code, severity, line, column]);
		for (const f of findings) expect(f.file).toBe(FILE);
	});

	it("reports a statement over D1's size limit at its first token", () => {
		const rows = Array.from({ length: 4000 }, (_, n) => `(${n}, '${"x".repeat(30)}')`);
		const sql = `CREATE TABLE t (id, v);\n  INSERT INTO t VALUES ${rows.join(",\n")};`;
		const findings = lint(sql);
		expect(findings.map(where)).toEqual([
			["D1_REQUEST_TOO_LARGE", "warning", 1, 1],
			["D1_STATEMENT_TOO_LARGE", "error", 2, 3],
		]);
		expect(findings[1]?.message).toContain(`${D1_MAX_STATEMENT_BYTES} bytes`);
		expect(findings[1]?.message).toMatch(/split/i);
	});

	it.each(["fts5", "FTS5", "rtree", "rtree_i32", "RTree"])(
		"accepts virtual tables USING %s",
		(m) => {
			expect(lint(`CREATE VIRTUAL TABLE IF NOT EXISTS v USING ${m}(a, b);`)).toEqual([]);
		},
	);

	it.each([...D1_ALLOWED_PRAGMAS])("accepts PRAGMA %s", (name) => {
		expect(codes(`PRAGMA ${name}(users);`).filter((c) => c !== "D1_PRAGMA")).toEqual([]);
		expect([codes(`PRAGMA ${name};`), codes(`PRAGMA ${name}(users);`)]).toContainEqual([]);
	});

	it.each([
		"CREATE TABLE t (\n  id INTEGER,\n  [_cf_col] TEXT\n);",
		"ALTER TABLE t ADD COLUMN _cf_c TEXT;",
		"ALTER TABLE t RENAME COLUMN a TO _cf_a;",
		"ALTER TABLE users ADD COLUMN plan TEXT NOT NULL DEFAULT 'free';",
		"ALTER TABLE users ADD COLUMN total INT NOT NULL GENERATED ALWAYS AS (a + b) VIRTUAL;",
		`CREATE TABLE wide (${Array.from({ length: 100 }, (_, n) => `c${n}`).join(", ")});`,
		`INSERT INTO t (x) ${Array.from({ length: 5 }, (_, n) => `SELECT ${n}`).join(" UNION ALL ")};`,
		"SELECT json_extract(data, '$.a'), coalesce(a, b), count(*) FROM t WHERE 1;",
		"CREATE VIRTUAL TABLE v USING fts5vocab(docs, 'row');",
	])("accepts what D1 accepts: %s", (sql) => {
		expect(lint(sql)).toEqual([]);
	});

	it.each([
		"PRAGMA foreign_keys = ON;",
		"PRAGMA foreign_keys = 1;",
		"PRAGMA defer_foreign_keys = ON;",
		"PRAGMA defer_foreign_keys = OFF;",
		"PRAGMA foreign_keys;",
	])("accepts %s", (sql) => {
		expect(lint(sql)).toEqual([]);
	});

	it("does not treat trigger bodies as transactions or split them", () => {
		const sql = [
			"CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, updated_at TEXT);",
			"CREATE TRIGGER t_guard BEFORE UPDATE ON t",
			"BEGIN",
			"  SELECT RAISE(ROLLBACK, 'a must be positive; fix it') WHERE NEW.a < 0;",
			"  UPDATE t SET updated_at = CASE WHEN NEW.a > 0 THEN 'now' ELSE NULL END WHERE id = NEW.id;",
			"END;",
			"CREATE TRIGGER t_wipe AFTER DELETE ON t BEGIN",
			"  DELETE FROM audit;",
			"  UPDATE counters SET n = n - 1;",
			"END;",
		].join("\n");
		expect(lint(sql)).toEqual([]);
	});

	it.each([
		"INSERT INTO notes (body) VALUES ('BEGIN; COMMIT; PRAGMA foreign_keys=off; _cf_x; DROP TABLE t;');",
		"-- BEGIN;\n-- PRAGMA foreign_keys=off;\n/* CREATE TABLE _cf_x (a); DELETE FROM t; */\nSELECT 1;",
		'CREATE TABLE "a;b" ("c;d" TEXT DEFAULT \'_cf_\');',
		"CREATE TABLE t (x TEXT DEFAULT 'ATTACH; VACUUM;');",
		"SELECT '_cf_kv' AS name, [begin;] FROM t WHERE 1;",
	])("finds nothing in strings and comments: %j", (sql) => {
		expect(lint(sql)).toEqual([]);
	});

	it.each([
		"",
		"-- nothing here yet\n",
		"WITH src AS (SELECT 1 AS id) INSERT INTO t (id) SELECT id FROM src WHERE true ON CONFLICT (id) DO UPDATE SET n = n + 1;",
		"INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET n = n + 1;",
	])("finds nothing in %j", (sql) => {
		expect(lint(sql)).toEqual([]);
	});

	it("does not flag DELETE or UPDATE that have a WHERE", () => {
		expect(
			lint("DELETE FROM s WHERE expires < 1;\nUPDATE OR IGNORE u SET a = 1 WHERE id = 2;"),
		).toEqual([]);
	});

	it("names a table rebuild in the DROP TABLE message", () => {
		const sql = [
			"PRAGMA defer_foreign_keys = ON;",
			"CREATE TABLE __new_users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);",
			"INSERT INTO __new_users (id, email) SELECT id, email FROM users;",
			"DROP TABLE users;",
			"ALTER TABLE __new_users RENAME TO users;",
			"PRAGMA defer_foreign_keys = OFF;",
		].join("\n");
		const [finding, ...rest] = lint(sql);
		expect(rest).toEqual([]);
		expect(finding && where(finding)).toEqual(["D1_DESTRUCTIVE", "warning", 4, 1]);
		expect(finding?.message).toMatch(/rebuild/);
		expect(finding?.message).toMatch(/Time Travel/);
	});

	describe("suppression comments", () => {
		const destructive = "DROP TABLE legacy;\nDELETE FROM cache;";

		it("silences one rule for the whole file when a reason is given", () => {
			const sql = `-- workers-pipeline-disable D1_DESTRUCTIVE: legacy is empty since 2025-01; bookmark taken\n${destructive}\nBEGIN;`;
			expect(lint(sql).map(where)).toEqual([["D1_TRANSACTION", "error", 4, 1]]);
		});

		it("accepts the directive in a block comment, anywhere in the file", () => {
			const sql = `${destructive}\n/* workers-pipeline-disable d1_destructive: reviewed in #42 */`;
			expect(lint(sql)).toEqual([]);
		});

		it.each([
			"-- workers-pipeline-disable D1_DESTRUCTIVE",
			"-- workers-pipeline-disable D1_DESTRUCTIVE:",
			"-- workers-pipeline-disable D1_DESTRUCTIVE:    ",
		])("does not suppress without a reason: %j", (directive) => {
			const findings = lint(`${destructive}\n${directive}`);
			expect(findings.map((f) => f.code)).toEqual([
				"D1_DESTRUCTIVE",
				"D1_DESTRUCTIVE",
				"LINT_SUPPRESSION_REASON",
			]);
			expect(findings[2]?.message).toContain("-- workers-pipeline-disable D1_DESTRUCTIVE: <");
		});

		it.each([
			["-- workers-pipeline-disable NOT_A_RULE: because", /unknown rule "NOT_A_RULE"/],
			["-- workers-pipeline-disable", /no rule/],
			["-- workers-pipeline-disable LINT_SUPPRESSION_REASON: meta", /unknown rule/],
		])("reports an unknown rule in %j", (directive, message) => {
			const findings = lint(`SELECT 1;\n${directive}`);
			expect(findings.map(where)).toEqual([["LINT_SUPPRESSION_UNKNOWN", "error", 2, 1]]);
			expect(findings[0]?.message).toMatch(message);
		});

		it("ignores the directive text inside a string", () => {
			expect(
				codes("DROP TABLE t;\nSELECT '-- workers-pipeline-disable D1_DESTRUCTIVE: x';"),
			).toEqual(["D1_DESTRUCTIVE"]);
		});
	});

	it("passes a clean, realistic migration with zero findings", () => {
		const sql = `-- Migration number: 0003 \t 2026-01-12T10:00:00.000Z
-- Teams and memberships; rebuild of projects to add a team reference.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE IF NOT EXISTS teams (
	id TEXT PRIMARY KEY NOT NULL,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
	"slug" TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL DEFAULT (unixepoch()),
	updated_at INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

CREATE TABLE IF NOT EXISTS team_members (
	team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
	PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS team_members_user_idx ON team_members (user_id);

ALTER TABLE projects ADD COLUMN team_id TEXT REFERENCES teams (id);

UPDATE projects SET team_id = (SELECT t.id FROM teams t WHERE t.slug = 'default') WHERE team_id IS NULL;

CREATE TRIGGER IF NOT EXISTS teams_touch AFTER UPDATE ON teams
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
	UPDATE teams SET updated_at = unixepoch() WHERE id = NEW.id;
END;

CREATE VIRTUAL TABLE IF NOT EXISTS teams_fts USING fts5(name, content='teams', content_rowid='rowid');

INSERT INTO teams (id, name, slug) VALUES ('t_default', 'Default team; everyone', 'default')
ON CONFLICT (id) DO NOTHING;

PRAGMA defer_foreign_keys = OFF;
`;
		expect(lint(sql)).toEqual([]);
	});

	it("sorts findings by position", () => {
		const findings = lint("DELETE FROM a;\nBEGIN;\nPRAGMA journal_mode = WAL;\nATTACH 'x' AS y");
		expect(findings.map((f) => [f.line, f.code])).toEqual([
			[1, "D1_DESTRUCTIVE"],
			[2, "D1_TRANSACTION"],
			[3, "D1_PRAGMA"],
			[4, "D1_ATTACH"],
			[4, "D1_MISSING_SEMICOLON"],
		]);
	});

	it("lists each rule once, with a summary", () => {
		const codesSeen = new Set(LINT_RULES.map((r) => r.code));
		expect(codesSeen.size).toBe(LINT_RULES.length);
		for (const rule of LINT_RULES) expect(rule.summary.length).toBeGreaterThan(10);
	});
});

describe("lintMigration() over real D1 migration histories", () => {
	const corpus = "/work/shared/corpus/d1";
	const sqlFiles = (dir: string): string[] =>
		readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
			const path = join(dir, entry.name);
			if (entry.isDirectory()) return sqlFiles(path);
			return entry.name.endsWith(".sql") ? [path] : [];
		});
	const severities = new Map(LINT_RULES.map((r) => [r.code as string, r.severity]));

	it("never throws and keeps every finding inside its file", () => {
		const files = sqlFiles(corpus);
		expect(files.length).toBeGreaterThan(100);
		const summary = new Map<string, Map<string, number>>();
		for (const path of files) {
			const name = relative(corpus, path);
			const content = readFileSync(path, "utf8");
			const lines = content.split("\n");
			const findings = lintMigration({ name, content });
			const set = name.split("/")[0] ?? name;
			const counts = summary.get(set) ?? new Map<string, number>();
			summary.set(set, counts);
			for (const f of findings) {
				expect(f.file).toBe(name);
				expect(f.severity).toBe(severities.get(f.code));
				expect(f.line).toBeGreaterThanOrEqual(1);
				expect(f.line).toBeLessThanOrEqual(lines.length);
				expect(f.column).toBeGreaterThanOrEqual(1);
				expect(f.column).toBeLessThanOrEqual((lines[(f.line ?? 1) - 1]?.length ?? 0) + 1);
				expect(formatLintFinding(f).startsWith(`${name}:${f.line}:${f.column} `)).toBe(true);
				counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
			}
		}
		const lines = [...summary].map(([set, counts]) => {
			const parts = [...counts].map(([code, n]) => `${code}×${n}`).join(", ");
			return `  ${set}: ${parts || "clean"}`;
		});
		console.log(`lintMigration over ${files.length} corpus files:\n${lines.join("\n")}`);
	});
});

describe("formatLintFinding()", () => {
	const base = { code: "D1_PRAGMA", severity: "error", message: "Remove it." } as const;

	it.each<[Finding, string]>([
		[
			{ ...base, file: "m/0001_x.sql", line: 3, column: 8 },
			"m/0001_x.sql:3:8 error D1_PRAGMA Remove it.",
		],
		[{ ...base, file: "m/0001_x.sql", line: 3 }, "m/0001_x.sql:3 error D1_PRAGMA Remove it."],
		[{ ...base, file: "m/0001_x.sql" }, "m/0001_x.sql error D1_PRAGMA Remove it."],
		[{ ...base, severity: "warning" }, "warning D1_PRAGMA Remove it."],
	])("formats %j", (finding, expected) => {
		expect(formatLintFinding(finding)).toBe(expected);
	});
});

// What each finding tells the user, where it points, and what silences it: one case per branch
// of the rules, the messages spelled out (reviewed).
const WIDE_TABLE = `CREATE TABLE wide (${Array.from({ length: 101 }, (_, i) => `c${i}`).join(", ")});`;
const COMPOUND_SELECT = `SELECT ${Array.from({ length: 6 }, (_, i) => i).join(" UNION SELECT ")};`;
const DEEP_EXPRESSION = `SELECT ${Array.from({ length: 101 }, (_, i) => `a = ${i}`).join(" OR ")} FROM t;`;

describe("lintMigration(): BEGIN TRANSACTION as text (wrangler d1/trimmer.ts on --local)", () => {
	it("warns where a comment holds it twice: --local refuses the file", () => {
		const found = lint(
			"-- no BEGIN TRANSACTION here: D1 wraps the file\nCREATE TABLE a (x);\n/* BEGIN TRANSACTION; */\n",
		).filter((f) => f.code === "D1_LOCAL_TRANSACTION_TEXT");
		expect(found.map(where)).toEqual([["D1_LOCAL_TRANSACTION_TEXT", "warning", 1, 1]]);
		expect(found[0]?.message).toMatch(/appears 2 times .* refuses such a file/);
	});

	it("warns once where a value holds it: --local deletes text from the file", () => {
		const found = lint("INSERT INTO notes VALUES ('run BEGIN TRANSACTION; then COMMIT;');\n");
		expect(found.map(where)).toEqual([["D1_LOCAL_TRANSACTION_TEXT", "warning", 1, 27]]);
		expect(found[0]?.message).toMatch(/in a quoted value: .* deletes the first/);
	});

	it("leaves other spellings and the statement itself (D1_TRANSACTION) alone", () => {
		expect(codes("-- begin transaction is D1's job\nCREATE TABLE a (x);\n")).toEqual([]);
		expect(codes("BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;\n")).toEqual([
			"D1_TRANSACTION",
			"D1_TRANSACTION",
		]);
	});
});

describe("lintMigration(): a BOM file that starts with a trigger (wrangler d1/splitter.ts on --local)", () => {
	const trigger = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\nEND;\n";
	const bomLint = (content: string, bom = true) =>
		lintMigration({ name: FILE, content, bom }).filter((f) => f.code === "D1_LOCAL_BOM_TRIGGER");
	it("warns at the trigger, after comments too", () => {
		expect(bomLint(trigger).map(where)).toEqual([["D1_LOCAL_BOM_TRIGGER", "warning", 1, 1]]);
		expect(bomLint(`-- notes\n${trigger}`).map(where)).toEqual([
			["D1_LOCAL_BOM_TRIGGER", "warning", 2, 1],
		]);
		expect(bomLint(trigger.replace("CREATE TRIGGER", "CREATE TEMP TRIGGER"))).toHaveLength(1);
	});
	it("leaves a file without BOM, and a BOM file whose trigger comes later", () => {
		expect(bomLint(trigger, false)).toEqual([]);
		expect(bomLint(`CREATE TABLE a (x);\n${trigger}`)).toEqual([]);
	});
});

describe("lintMigration() messages", () => {
	// [what, SQL, each finding as "line:column severity CODE: message"]
	const CASES: [string, string, string[]][] = [
		[
			"reserved table",
			"CREATE TABLE _cf_kv (k);",
			[
				'1:14 error D1_RESERVED_NAME: table "_cf_kv" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_kv").',
			],
		],
		[
			"reserved index, any case",
			"CREATE UNIQUE INDEX IF NOT EXISTS _CF_idx ON t (a);",
			[
				'1:35 error D1_RESERVED_NAME: index "_CF_idx" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_idx").',
			],
		],
		[
			"reserved view in a schema",
			"CREATE VIEW main._cf_v AS SELECT 1;",
			[
				'1:18 error D1_RESERVED_NAME: view "_cf_v" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_v").',
			],
		],
		[
			"reserved trigger",
			"CREATE TRIGGER _cf_t AFTER INSERT ON t BEGIN SELECT 1; END;",
			[
				'1:16 error D1_RESERVED_NAME: trigger "_cf_t" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_t").',
			],
		],
		["a CREATE of something else", "CREATE INDEX i ON t (a);", []],
		[
			"temp table",
			"CREATE TEMP TABLE scratch (x);",
			[
				"1:8 error D1_TEMP_OBJECT: CREATE TEMP TABLE makes a connection-local object that D1 does not keep between requests. Create a regular table (and drop it at the end of the migration if it is scratch space).",
			],
		],
		[
			"temporary view",
			"create temporary view v as select 1;",
			[
				"1:8 error D1_TEMP_OBJECT: CREATE TEMP VIEW makes a connection-local object that D1 does not keep between requests. Create a regular view (and drop it at the end of the migration if it is scratch space).",
			],
		],
		[
			"reserved virtual table",
			"CREATE VIRTUAL TABLE _cf_search USING fts5(body);",
			[
				'1:22 error D1_RESERVED_NAME: virtual table "_cf_search" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_search").',
			],
		],
		[
			"virtual table module",
			"CREATE VIRTUAL TABLE IF NOT EXISTS main.docs USING fts4(body);",
			[
				'1:52 error D1_VIRTUAL_TABLE: Virtual table module "fts4" is not available on D1, which allows only fts5, fts5vocab, rtree, rtree_i32. Use one of those, or a regular table.',
			],
		],
		["virtual table without a module", "CREATE VIRTUAL TABLE docs;", []],
		[
			"rename to a reserved name",
			"ALTER TABLE t RENAME TO _cf_t;",
			[
				'1:25 error D1_RESERVED_NAME: table "_cf_t" starts with "_cf_", a prefix D1 reserves for its own tables; D1 refuses it. Rename it (e.g. "cf_t").',
			],
		],
		["rename a column (no finding)", "ALTER TABLE t RENAME COLUMN a TO b;", []],
		[
			"drop column",
			"ALTER TABLE main.t DROP COLUMN c;",
			[
				"1:20 warning D1_DESTRUCTIVE: ALTER TABLE t DROP COLUMN c deletes that column's data in every row. Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"drop without COLUMN",
			"ALTER TABLE t DROP c;",
			[
				"1:15 warning D1_DESTRUCTIVE: ALTER TABLE t DROP COLUMN c deletes that column's data in every row. Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"drop table",
			"DROP TABLE IF EXISTS main.t;",
			[
				"1:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		["drop index (no finding)", "DROP INDEX i;", []],
		[
			"delete without where",
			"DELETE FROM main.logs;",
			[
				"1:1 warning D1_DESTRUCTIVE: DELETE FROM logs without WHERE deletes every row. Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"update or replace without where",
			"UPDATE OR REPLACE t SET a = 1;",
			[
				"1:1 warning D1_DESTRUCTIVE: UPDATE t without WHERE overwrites the SET columns in every row. Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"delete after a CTE",
			"WITH x AS (SELECT 1) DELETE FROM t;",
			[
				"1:22 warning D1_DESTRUCTIVE: DELETE FROM t without WHERE deletes every row. Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"update after a CTE",
			"WITH x AS (SELECT 1) UPDATE t SET a = 1;",
			[
				"1:22 warning D1_DESTRUCTIVE: UPDATE t without WHERE overwrites the SET columns in every row. Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"upsert after a CTE (no finding)",
			"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x WHERE true ON CONFLICT DO UPDATE SET a = 1;",
			[],
		],
		[
			"replace after a CTE (no finding)",
			"WITH x AS (SELECT 1) REPLACE INTO t SELECT * FROM x;",
			[],
		],
		[
			"pragma off the list",
			"PRAGMA journal_mode = WAL;",
			[
				"1:8 error D1_PRAGMA: PRAGMA journal_mode is not on D1's list of supported PRAGMAs, so D1 rejects the migration. Remove it (D1 manages journaling, sync and page settings itself); supported: table_list, table_info, table_xinfo, data_version, page_size, case_sensitive_like, foreign_keys, defer_foreign_keys, ignore_check_constraints, legacy_alter_table, recursive_triggers, reverse_unordered_selects, foreign_key_check, foreign_key_list, index_info, index_list, index_xinfo, quick_check, optimize.",
			],
		],
		[
			"pragma refused in another schema",
			"PRAGMA aux.table_info(t);",
			[
				'1:12 error D1_PRAGMA: D1 refuses this PRAGMA table_info ("not authorized"): only the main schema may be named, not "aux".',
			],
		],
		["pragma without a name (no finding)", "PRAGMA;", []],
		[
			"foreign_keys = OFF",
			"PRAGMA foreign_keys = OFF;",
			[
				"1:23 error D1_FOREIGN_KEYS_OFF: PRAGMA foreign_keys = OFF is a no-op on D1 (each migration runs inside a transaction, where SQLite ignores it), so foreign keys stay enforced and a table rebuild's DROP TABLE fails or cascades deletes into child tables. Put `PRAGMA defer_foreign_keys = ON;` at the start of the migration instead (`= OFF` at the end is optional); it defers checks to commit but does not stop ON DELETE CASCADE, so copy child rows aside before dropping a parent table.",
			],
		],
		[
			"foreign_keys(0)",
			"PRAGMA foreign_keys(0);",
			[
				"1:21 error D1_FOREIGN_KEYS_OFF: PRAGMA foreign_keys = OFF is a no-op on D1 (each migration runs inside a transaction, where SQLite ignores it), so foreign keys stay enforced and a table rebuild's DROP TABLE fails or cascades deletes into child tables. Put `PRAGMA defer_foreign_keys = ON;` at the start of the migration instead (`= OFF` at the end is optional); it defers checks to commit but does not stop ON DELETE CASCADE, so copy child rows aside before dropping a parent table.",
			],
		],
		["foreign_keys read (no finding)", "PRAGMA foreign_keys;", []],
		["foreign_keys ON (no finding)", "PRAGMA foreign_keys = ON;", []],
		[
			"add NOT NULL column",
			"ALTER TABLE t ADD COLUMN c TEXT NOT NULL;",
			[
				'1:33 warning D1_ADD_NOT_NULL: ALTER TABLE t ADD COLUMN c ... NOT NULL has no non-NULL DEFAULT: it works on an empty database (and in a fresh replay) but SQLite refuses it on a table that has rows ("Cannot add a NOT NULL column with default value NULL"). Give it a DEFAULT, or add it nullable, backfill, then rebuild the table with NOT NULL.',
			],
		],
		[
			"add NOT NULL column without COLUMN",
			"ALTER TABLE t ADD c TEXT NOT NULL;",
			[
				'1:26 warning D1_ADD_NOT_NULL: ALTER TABLE t ADD COLUMN c ... NOT NULL has no non-NULL DEFAULT: it works on an empty database (and in a fresh replay) but SQLite refuses it on a table that has rows ("Cannot add a NOT NULL column with default value NULL"). Give it a DEFAULT, or add it nullable, backfill, then rebuild the table with NOT NULL.',
			],
		],
		[
			"add NOT NULL with a default (no finding)",
			"ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT 'x';",
			[],
		],
		[
			"add NOT NULL after a CHECK (...) NULL",
			"ALTER TABLE t ADD COLUMN c TEXT CHECK (c IS NOT NULL OR NULL) NOT NULL;",
			[
				'1:63 warning D1_ADD_NOT_NULL: ALTER TABLE t ADD COLUMN c ... NOT NULL has no non-NULL DEFAULT: it works on an empty database (and in a fresh replay) but SQLite refuses it on a table that has rows ("Cannot add a NOT NULL column with default value NULL"). Give it a DEFAULT, or add it nullable, backfill, then rebuild the table with NOT NULL.',
			],
		],
		[
			"add generated NOT NULL (no finding)",
			"ALTER TABLE t ADD COLUMN c INT GENERATED ALWAYS AS (1) NOT NULL;",
			[],
		],
		[
			"transactions",
			"begin;\nCommit;\nSAVEPOINT a;\nRELEASE a;\nEND;\nROLLBACK;",
			[
				"1:1 error D1_TRANSACTION: BEGIN controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.",
				"2:1 error D1_TRANSACTION: COMMIT controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.",
				"3:1 error D1_TRANSACTION: SAVEPOINT controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.",
				"4:1 error D1_TRANSACTION: RELEASE controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.",
				"5:1 error D1_TRANSACTION: END controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.",
				"6:1 error D1_TRANSACTION: ROLLBACK controls an explicit transaction, which D1 refuses; wrangler already applies each migration file atomically. Remove the statement.",
			],
		],
		[
			"attach and detach",
			"attach 'x.db' AS x;\ndetach x;",
			[
				"1:1 error D1_ATTACH: ATTACH is not supported: a D1 database is a single SQLite database and cannot attach others. Remove it and use a separate D1 binding instead.",
				"2:1 error D1_ATTACH: DETACH is not supported: a D1 database is a single SQLite database and cannot attach others. Remove it and use a separate D1 binding instead.",
			],
		],
		[
			"function off the list",
			"SELECT sqlite_version();",
			[
				'1:8 error D1_FUNCTION: sqlite_version() is a SQLite function D1 does not allow (workerd\'s function allow-list), so D1 refuses the statement ("not authorized"). Remove the call or compute the value in the application.',
			],
		],
		[
			"too many columns",
			WIDE_TABLE,
			[
				'1:14 error D1_LIMIT: D1 refuses this statement ("too many columns on wide"). D1 allows at most 100 columns per table: split the table.',
			],
		],
		[
			"too many compound terms",
			COMPOUND_SELECT,
			[
				'1:70 error D1_LIMIT: D1 refuses this statement ("too many terms in compound SELECT"). D1 allows at most 5 SELECTs joined by UNION/INTERSECT/EXCEPT: use a multi-row VALUES list or several statements.',
			],
		],
		[
			"too deep",
			DEEP_EXPRESSION,
			[
				'1:990 error D1_LIMIT: D1 refuses this statement ("Expression tree is too large (maximum depth 100)"). D1 allows expressions at most 100 levels deep: use IN (...) instead of long OR chains, or split the statement.',
			],
		],
		[
			"unterminated string",
			"INSERT INTO t VALUES ('abc);",
			[
				"1:23 error SQL_UNTERMINATED: This string literal (') is never closed, so it swallows the rest of the file. Add the closing quote.",
			],
		],
		[
			"unterminated blob",
			"INSERT INTO t VALUES (x'ab);",
			[
				"1:23 error SQL_UNTERMINATED: This blob literal (x) is never closed, so it swallows the rest of the file. Add the closing quote.",
			],
		],
		[
			"unterminated quoted identifier",
			'CREATE TABLE "t (x);',
			[
				'1:14 error SQL_UNTERMINATED: This quoted identifier (") is never closed, so it swallows the rest of the file. Add the closing quote.',
			],
		],
		[
			"unterminated bracket identifier",
			"CREATE TABLE [t (x);",
			[
				"1:14 error SQL_UNTERMINATED: This quoted identifier ([) is never closed, so it swallows the rest of the file. Add the closing quote.",
			],
		],
		[
			"unterminated block comment",
			"CREATE TABLE t (x); /* note",
			[
				"1:21 error SQL_UNTERMINATED: This /* comment is never closed, so it swallows the rest of the file, including the ledger INSERT wrangler appends (the migration would run but never be recorded). Close it with */.",
			],
		],
		[
			"missing semicolon",
			"CREATE TABLE t (x);\nCREATE TABLE u (y)  -- the end\n",
			[
				'2:18 error D1_MISSING_SEMICOLON: The last statement does not end with `;`. wrangler appends its ledger `INSERT INTO d1_migrations ...` to the file and D1 then fails with `near "INSERT": syntax error`. Add `;` after it (for a CREATE TRIGGER, also check its BEGIN ... END is closed).',
			],
		],
		[
			"findings on one line, by column",
			"DROP TABLE b; DROP TABLE a;",
			[
				"1:1 warning D1_DESTRUCTIVE: DROP TABLE b deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
				"1:15 warning D1_DESTRUCTIVE: DROP TABLE a deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"suppressed, lower-case code",
			"-- workers-pipeline-disable d1_destructive: backed up first\nDROP TABLE t;",
			[],
		],
		[
			"suppressed in a block comment",
			"/* workers-pipeline-disable D1_DESTRUCTIVE : kept in R2 */\nDELETE FROM t;",
			[],
		],
		[
			"suppression naming no rule",
			"-- workers-pipeline-disable\nDROP TABLE t;",
			[
				"1:1 error LINT_SUPPRESSION_UNKNOWN: workers-pipeline-disable names no rule, so nothing is silenced. Use one of: D1_TRANSACTION, D1_PRAGMA, D1_FOREIGN_KEYS_OFF, D1_RESERVED_NAME, D1_ATTACH, D1_TEMP_OBJECT, D1_VIRTUAL_TABLE, D1_FUNCTION, D1_LIMIT, D1_REQUEST_TOO_LARGE, D1_ADD_NOT_NULL, D1_STATEMENT_TOO_LARGE, D1_DESTRUCTIVE, D1_MISSING_SEMICOLON, D1_LOCAL_BOM_TRIGGER, D1_LOCAL_TRANSACTION_TEXT, SQL_UNTERMINATED.",
				"2:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"suppression naming an unknown rule",
			"-- workers-pipeline-disable NOPE: x\nDROP TABLE t;",
			[
				'1:1 error LINT_SUPPRESSION_UNKNOWN: workers-pipeline-disable names unknown rule "NOPE", so nothing is silenced. Use one of: D1_TRANSACTION, D1_PRAGMA, D1_FOREIGN_KEYS_OFF, D1_RESERVED_NAME, D1_ATTACH, D1_TEMP_OBJECT, D1_VIRTUAL_TABLE, D1_FUNCTION, D1_LIMIT, D1_REQUEST_TOO_LARGE, D1_ADD_NOT_NULL, D1_STATEMENT_TOO_LARGE, D1_DESTRUCTIVE, D1_MISSING_SEMICOLON, D1_LOCAL_BOM_TRIGGER, D1_LOCAL_TRANSACTION_TEXT, SQL_UNTERMINATED.',
				"2:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"suppression after other text",
			"-- workers-pipeline-disable because D1_DESTRUCTIVE: x\nDROP TABLE t;",
			[
				'1:1 error LINT_SUPPRESSION_UNKNOWN: workers-pipeline-disable names unknown rule "BECAUSE", so nothing is silenced. Use one of: D1_TRANSACTION, D1_PRAGMA, D1_FOREIGN_KEYS_OFF, D1_RESERVED_NAME, D1_ATTACH, D1_TEMP_OBJECT, D1_VIRTUAL_TABLE, D1_FUNCTION, D1_LIMIT, D1_REQUEST_TOO_LARGE, D1_ADD_NOT_NULL, D1_STATEMENT_TOO_LARGE, D1_DESTRUCTIVE, D1_MISSING_SEMICOLON, D1_LOCAL_BOM_TRIGGER, D1_LOCAL_TRANSACTION_TEXT, SQL_UNTERMINATED.',
				"2:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"suppression without a reason",
			"-- workers-pipeline-disable D1_DESTRUCTIVE\nDROP TABLE t;",
			[
				"1:1 error LINT_SUPPRESSION_REASON: Suppressing D1_DESTRUCTIVE needs a reason, so D1_DESTRUCTIVE stays active. Write it as `-- workers-pipeline-disable D1_DESTRUCTIVE: <why this is safe>`.",
				"2:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"suppression with an empty reason",
			"-- workers-pipeline-disable D1_DESTRUCTIVE:   \nDROP TABLE t;",
			[
				"1:1 error LINT_SUPPRESSION_REASON: Suppressing D1_DESTRUCTIVE needs a reason, so D1_DESTRUCTIVE stays active. Write it as `-- workers-pipeline-disable D1_DESTRUCTIVE: <why this is safe>`.",
				"2:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
		[
			"suppression with text but no colon",
			"-- workers-pipeline-disable D1_DESTRUCTIVE reviewed\nDROP TABLE t;",
			[
				"1:1 error LINT_SUPPRESSION_REASON: Suppressing D1_DESTRUCTIVE needs a reason, so D1_DESTRUCTIVE stays active. Write it as `-- workers-pipeline-disable D1_DESTRUCTIVE: <why this is safe>`.",
				"2:1 warning D1_DESTRUCTIVE: DROP TABLE t deletes the table and all its rows (and cascades to child tables with ON DELETE CASCADE). Confirm there is a backup or a D1 Time Travel bookmark to restore from, then silence this once reviewed with `-- workers-pipeline-disable D1_DESTRUCTIVE: <reason>`.",
			],
		],
	];

	it.each(CASES)("%s", (_, sql, expected) => {
		expect(
			lint(sql).map((f) => `${f.line}:${f.column} ${f.severity} ${f.code}: ${f.message}`),
		).toEqual(expected);
	});

	it.each([
		// The request (with wrangler's ledger INSERT) is over D1's limit either way; the statement only past it.
		[D1_MAX_STATEMENT_BYTES, ["D1_REQUEST_TOO_LARGE"]],
		[D1_MAX_STATEMENT_BYTES + 1, ["D1_REQUEST_TOO_LARGE", "D1_STATEMENT_TOO_LARGE"]],
	])("a statement of %i bytes → %j", (bytes, expected) => {
		// `SELECT '…'` is 9 bytes besides the quoted run; the `;` is not part of the statement.
		const sql = `SELECT '${"a".repeat(bytes - 9)}';`;
		expect(codes(sql)).toEqual(expected);
	});

	it("names the request size in bytes of UTF-8, not characters", () => {
		const sql = `SELECT '${"é".repeat(50_001)}';`;
		const [finding] = lint(sql).filter((f) => f.code === "D1_REQUEST_TOO_LARGE");
		expect(finding?.message).toContain(`This migration is ${Buffer.byteLength(sql)} bytes.`);
	});
});

describe("lintMigration() on cut-off and corner statements", () => {
	it.each([
		["CREATE TABLE;", []],
		["CREATE TEMP;", []],
		["CREATE VIRTUAL TABLE v USING;", []],
		["ALTER TABLE;", []],
		["ALTER TABLE t RENAME TO;", []],
		["ALTER TABLE t DROP;", ["D1_DESTRUCTIVE"]],
		["ALTER TABLE t ADD;", []],
		["DROP TABLE;", ["D1_DESTRUCTIVE"]],
		["DELETE FROM;", ["D1_DESTRUCTIVE"]],
		["UPDATE;", ["D1_DESTRUCTIVE"]],
		["PRAGMA foreign_keys =;", []],
		["PRAGMA foreign_keys OFF;", []],
		["PRAGMA foreign_keys = no;", ["D1_FOREIGN_KEYS_OFF"]],
		["PRAGMA foreign_keys = 'false';", ["D1_FOREIGN_KEYS_OFF"]],
		// Prisma's table redefinition: defer first, so the no-op OFF after it harms nothing.
		["PRAGMA defer_foreign_keys=ON;\nPRAGMA foreign_keys=OFF;\nPRAGMA foreign_keys=ON;", []],
		["PRAGMA defer_foreign_keys = true; PRAGMA foreign_keys(0);", []],
		// Only a defer that comes first, and only one that turns deferral on.
		["PRAGMA foreign_keys=OFF;\nPRAGMA defer_foreign_keys=ON;", ["D1_FOREIGN_KEYS_OFF"]],
		["PRAGMA defer_foreign_keys = OFF; PRAGMA foreign_keys = OFF;", ["D1_FOREIGN_KEYS_OFF"]],
		["ALTER TABLE t ADD COLUMN c TEXT CHECK (c IS NOT NULL);", []],
		["ALTER TABLE t ADD COLUMN c TEXT CHECK (c > 0) NOT NULL;", ["D1_ADD_NOT_NULL"]],
		["ALTER TABLE t ADD COLUMN c TEXT DEFAULT NULL NOT NULL;", ["D1_ADD_NOT_NULL"]],
		["ALTER TABLE t ADD COLUMN c INT AS (1) NOT NULL;", []],
		["ALTER TABLE t ADD COLUMN c TEXT NOT NULL DEFAULT ('x');", []],
		["-- workers-pipeline-disable :D1_DESTRUCTIVE: x\nSELECT 1;", ["LINT_SUPPRESSION_UNKNOWN"]],
		["WITH x AS (SELECT 1) VALUES (1);", []],
	])("%j → %j, without throwing", (sql, expected) => {
		expect(codes(sql)).toEqual(expected);
	});
});
