import { describe, expect, it } from "vitest";
import {
	compareAsLocale,
	findTopLevelWord,
	identifierName,
	isWord,
	isWordIn,
	keywordsAt,
	type SqlTokenKind,
	splitStatements,
	startsWithWords,
	tokenizeSql,
	utf8ByteLength,
} from "../../../ci/migrations/sql.ts";

const kinds = (sql: string) => tokenizeSql(sql).map((t) => [t.kind, t.text]);

describe("tokenizeSql()", () => {
	it.each<[string, SqlTokenKind, string]>([
		["'it''s'", "string", "it's"],
		['"my ""col"""', "quoted-identifier", 'my "col"'],
		["`tick``ed`", "quoted-identifier", "tick`ed"],
		["[my col]", "quoted-identifier", "my col"],
		["x'0aFF'", "blob", "0aFF"],
		["X''", "blob", ""],
		["123", "number", "123"],
		["1.5e-3", "number", "1.5e-3"],
		[".25", "number", ".25"],
		["0x1F", "number", "0x1F"],
		["1_000", "number", "1_000"],
		["?", "parameter", "?"],
		["?12", "parameter", "?12"],
		[":name", "parameter", ":name"],
		["@name", "parameter", "@name"],
		["$name", "parameter", "$name"],
		["SELECT", "keyword", "SELECT"],
		["users", "identifier", "users"],
		["_cf_kv", "identifier", "_cf_kv"],
		["naïve", "identifier", "naïve"],
		["a$1_Zé😀x", "identifier", "a$1_Zé😀x"],
		["$a$1é", "parameter", "$a$1é"],
		[":Ab_9$", "parameter", ":Ab_9$"],
		["->>", "operator", "->>"],
		["||", "operator", "||"],
		["<>", "operator", "<>"],
		[";", "semicolon", ";"],
		["-- note", "line-comment", "-- note"],
		["/* a; b */", "block-comment", "/* a; b */"],
	])("reads %s as one %s token", (sql, kind, value) => {
		const tokens = tokenizeSql(sql);
		expect(tokens).toHaveLength(1);
		expect(tokens[0]).toMatchObject({ kind, value, text: sql, offset: 0, line: 1, column: 1 });
		expect(tokens[0]?.unterminated).toBeUndefined();
	});

	it("gives 1-based line and column, counting CRLF as one line break", () => {
		const tokens = tokenizeSql("SELECT 1;\r\n  -- c\r\n\tFROM x");
		expect(tokens.map((t) => [t.text, t.line, t.column])).toEqual([
			["SELECT", 1, 1],
			["1", 1, 8],
			[";", 1, 9],
			["-- c", 2, 3],
			["FROM", 3, 2],
			["x", 3, 7],
		]);
	});

	it("keeps quotes, comments and semicolons apart", () => {
		expect(kinds("INSERT INTO t VALUES ('a;b', \"--x\") -- y;\n/* z; */;")).toEqual([
			["keyword", "INSERT"],
			["keyword", "INTO"],
			["identifier", "t"],
			["keyword", "VALUES"],
			["operator", "("],
			["string", "'a;b'"],
			["operator", ","],
			["quoted-identifier", '"--x"'],
			["operator", ")"],
			["line-comment", "-- y;"],
			["block-comment", "/* z; */"],
			["semicolon", ";"],
		]);
	});

	it.each([
		["string", "SELECT 'abc", "'abc"],
		["quoted-identifier", 'SELECT "abc', '"abc'],
		["quoted-identifier", "SELECT [abc", "[abc"],
		["blob", "SELECT x'ab", "x'ab"],
		["block-comment", "SELECT 1; /* open", "/* open"],
	])("flags an unterminated %s and runs it to the end of input", (kind, sql, text) => {
		const last = tokenizeSql(sql).at(-1);
		expect(last).toMatchObject({ kind, text, unterminated: true });
	});

	it("never throws on odd characters", () => {
		expect(kinds("a ! # 😀 b")).toEqual([
			["identifier", "a"],
			["unknown", "!"],
			["unknown", "#"],
			["identifier", "😀"],
			["identifier", "b"],
		]);
	});

	it("treats a leading BOM as whitespace", () => {
		expect(tokenizeSql("\uFEFFSELECT 1;")[0]).toMatchObject({ text: "SELECT", column: 2 });
	});
});

describe("splitStatements()", () => {
	it("splits on top-level semicolons and keeps the original text without the `;`", () => {
		const sql = "-- header\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nINSERT INTO a VALUES ('--');";
		expect(
			splitStatements(sql).map((s) => [s.text, s.line, s.column, s.offset, s.terminated]),
		).toEqual([
			["CREATE TABLE a (x TEXT DEFAULT ';')", 2, 1, 10, true],
			["INSERT INTO a VALUES ('--')", 4, 1, 48, true],
		]);
	});

	it("keeps a trigger body with inner `;` and CASE ... END together", () => {
		const sql = [
			"CREATE TRIGGER t_au AFTER UPDATE ON t",
			"WHEN CASE WHEN NEW.a THEN 1 ELSE 0 END = 1",
			"BEGIN",
			"  UPDATE t SET b = CASE WHEN NEW.a > 0 THEN 'x' ELSE 'y' END WHERE id = NEW.id;",
			"  SELECT RAISE(ROLLBACK, 'no; way') WHERE NEW.a < 0;",
			"END;",
			"CREATE TEMP TRIGGER t2 AFTER INSERT ON t BEGIN DELETE FROM u; END;",
			"SELECT 1;",
		].join("\n");
		const statements = splitStatements(sql);
		expect(statements.map((s) => [s.line, keywordsAt(s, 2)])).toEqual([
			[1, ["CREATE", "TRIGGER"]],
			[7, ["CREATE", "TEMP"]],
			[8, ["SELECT", "1"]],
		]);
		expect(statements[0]?.text.endsWith("END")).toBe(true);
		expect(statements.every((s) => s.terminated)).toBe(true);
	});

	it("marks a missing final `;` and ignores comment-only tails and empty statements", () => {
		const statements = splitStatements(";;\nCREATE TABLE a (x);\nSELECT 1 -- tail\n/* end */\n");
		expect(statements.map((s) => [s.text, s.terminated])).toEqual([
			["CREATE TABLE a (x)", true],
			["SELECT 1", false],
		]);
		expect(splitStatements("-- only a comment\n/* and another */")).toEqual([]);
		expect(splitStatements("")).toEqual([]);
	});

	it("excludes comments from tokens but keeps them in the text", () => {
		const [statement] = splitStatements("SELECT /* why */ 1 -- c\n;");
		expect(statement?.tokens.map((t) => t.text)).toEqual(["SELECT", "1"]);
		expect(statement?.text).toBe("SELECT /* why */ 1 -- c\n");
	});

	it("measures byteLength in UTF-8", () => {
		const [statement] = splitStatements("SELECT 'é😀';");
		expect(statement?.byteLength).toBe(utf8ByteLength("SELECT 'é😀'"));
		expect(statement?.byteLength).toBe(15);
	});

	it("runs an unclosed trigger body to the end of input as one unterminated statement", () => {
		const statements = splitStatements(
			"CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT 2;",
		);
		expect(statements).toHaveLength(1);
		expect(statements[0]?.terminated).toBe(false);
	});
});

describe("statement helpers", () => {
	const [statement] = splitStatements(
		'WITH s AS (SELECT id FROM t WHERE a) DELETE FROM "My""T" WHERE id IN s;',
	);

	it("reads words, names and top-level positions", () => {
		if (statement === undefined) throw new Error("no statement");
		expect(keywordsAt(statement, 3)).toEqual(["WITH", "S", "AS"]);
		expect(keywordsAt(statement, 2, 11)).toEqual(["DELETE", "FROM"]);
		expect(startsWithWords(statement, "WITH", "S")).toBe(true);
		expect(startsWithWords(statement, "DELETE")).toBe(false);
		expect(findTopLevelWord(statement.tokens, "WHERE")).toBe(14);
		expect(findTopLevelWord(statement.tokens, "DELETE")).toBe(11);
		expect(findTopLevelWord(statement.tokens, "GROUP")).toBe(-1);
		expect(identifierName(statement.tokens[13])).toBe('My"T');
		expect(identifierName(statement.tokens[3])).toBeUndefined();
		expect(isWord(statement.tokens[0], "WITH", "SELECT")).toBe(true);
	});
});

describe("compareAsLocale()", () => {
	const sign = (n: number) => Math.sign(n);

	it.each([
		["a_1", "a1x"],
		["entity_10", "entity_9"],
		["ab", "a_b"],
		["a", ""],
		["users", "users_audit"],
		["A_B", "AB"],
		["D1_PRAGMA", "D1_DESTRUCTIVE"],
		["Ab", "ab"],
		["é", "e"],
		["z", "ä"],
		["a-b", "a_b"],
		["same", "same"],
	])('should order %j and %j as localeCompare(…, "en") does', (a, b) => {
		expect(sign(compareAsLocale(a, b))).toBe(sign(a.localeCompare(b, "en")));
		expect(sign(compareAsLocale(b, a))).toBe(sign(b.localeCompare(a, "en")));
	});

	// Danish collates "aa" as "å", after "z": a snapshot sorted by the machine's locale would
	// differ between a developer in Copenhagen and CI.
	it.each([
		["aa_x", "z"],
		["Aab", "zz"],
	])("should order %j before %j on every machine, as in English, not Danish", (a, b) => {
		expect(new Intl.Collator("da").compare(a, b)).toBeGreaterThan(0);
		expect(compareAsLocale(a, b)).toBeLessThan(0);
	});

	it('should sort generated names exactly as localeCompare(…, "en") sorts them', () => {
		const alphabet = "_0123456789abcxyzABCXYZ-é";
		let seed = 7;
		const next = () => {
			seed = (seed * 1103515245 + 12345) % 2 ** 31;
			return seed;
		};
		const names = Array.from({ length: 3000 }, () => {
			const upper = next() % 2 === 0;
			return Array.from({ length: 1 + (next() % 7) }, () => {
				const c = alphabet.charAt(next() % (next() % 4 === 0 ? alphabet.length : 11));
				return upper ? c.toUpperCase() : c;
			}).join("");
		});
		expect([...names].sort(compareAsLocale)).toEqual(
			[...names].sort((a, b) => a.localeCompare(b, "en")),
		);
	});
});

describe("isWordIn()", () => {
	const words = new Set(["SELECT", "FROM"]);
	it.each([
		["select", true],
		["From", true],
		["where", false],
		["'select'", false],
		['"from"', false],
	])("%s: %s, as isWord says", (sql, expected) => {
		const [token] = tokenizeSql(sql);
		expect(isWordIn(token, words)).toBe(expected);
		expect(isWord(token, ...words)).toBe(expected);
	});
	it("is false for no token", () => expect(isWordIn(undefined, words)).toBe(false));
});
