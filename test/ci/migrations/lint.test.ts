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
