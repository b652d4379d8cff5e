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
	it("reads words, names and top-level positions", () => {
		// Inside the test: an error while collecting would hide a mutant from every test.
		const [statement] = splitStatements(
			'WITH s AS (SELECT id FROM t WHERE a) DELETE FROM "My""T" WHERE id IN s;',
		);
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

describe("tokenizeSql() edges", () => {
	it.each([
		["9", [["number", "9"]]],
		["0x9f", [["number", "0x9f"]]],
		["0XaF_0", [["number", "0XaF_0"]]],
		[
			"0x",
			[
				["number", "0"],
				["identifier", "x"],
			],
		],
		[
			"0xg",
			[
				["number", "0"],
				["identifier", "xg"],
			],
		],
		[
			"0x1__2",
			[
				["number", "0x1"],
				["identifier", "__2"],
			],
		],
		[
			"1__0",
			[
				["number", "1"],
				["identifier", "__0"],
			],
		],
		[
			"1_",
			[
				["number", "1"],
				["identifier", "_"],
			],
		],
		["1e5", [["number", "1e5"]]],
		["1E+5", [["number", "1E+5"]]],
		["2e-9", [["number", "2e-9"]]],
		[
			"1e",
			[
				["number", "1"],
				["identifier", "e"],
			],
		],
		[
			"1e+",
			[
				["number", "1"],
				["identifier", "e"],
				["operator", "+"],
			],
		],
		["1.", [["number", "1."]]],
		[
			"1.2.3",
			[
				["number", "1.2"],
				["number", ".3"],
			],
		],
		[
			"a.b",
			[
				["identifier", "a"],
				["operator", "."],
				["identifier", "b"],
			],
		],
		["Z9", [["identifier", "Z9"]]],
		["a$b", [["identifier", "a$b"]]],
		["$1", [["parameter", "$1"]]],
		[
			"$ a",
			[
				["unknown", "$"],
				["identifier", "a"],
			],
		],
		[
			"é\u007f",
			[
				["identifier", "é"],
				["unknown", "\u007f"],
			],
		],
		[
			"a/b",
			[
				["identifier", "a"],
				["operator", "/"],
				["identifier", "b"],
			],
		],
		["/*/ x", [["block-comment", "/*/ x"]]],
		[
			'"a" b',
			[
				["quoted-identifier", '"a"'],
				["identifier", "b"],
			],
		],
		[
			"[a]]",
			[
				["quoted-identifier", "[a]"],
				["unknown", "]"],
			],
		],
		[
			"x'ab''cd'",
			[
				["blob", "x'ab'"],
				["string", "'cd'"],
			],
		],
		[
			":a b",
			[
				["parameter", ":a"],
				["identifier", "b"],
			],
		],
		[
			": a",
			[
				["unknown", ":"],
				["identifier", "a"],
			],
		],
		[
			"a->>'x'",
			[
				["identifier", "a"],
				["operator", "->>"],
				["string", "'x'"],
			],
		],
		[
			"a->b",
			[
				["identifier", "a"],
				["operator", "->"],
				["identifier", "b"],
			],
		],
		[
			"a<=b",
			[
				["identifier", "a"],
				["operator", "<="],
				["identifier", "b"],
			],
		],
		[
			"a\r\n\f\v\tb",
			[
				["identifier", "a"],
				["identifier", "b"],
			],
		],
		[
			"#!{",
			[
				["unknown", "#"],
				["unknown", "!"],
				["unknown", "{"],
			],
		],
	])("%j → %j", (sql, expected) => {
		expect(kinds(sql)).toEqual(expected);
	});

	it.each([
		["'abc", "string", "abc"],
		["'a''b", "string", "a'b"],
		['"col', "quoted-identifier", "col"],
		["[col", "quoted-identifier", "col"],
		["x'ab", "blob", "ab"],
		["/* open", "block-comment", "/* open"],
	])("marks %j as an unterminated %s, its value to the end of input", (sql, kind, value) => {
		const [token, ...rest] = tokenizeSql(sql);
		expect(rest).toEqual([]);
		expect(token).toMatchObject({ kind, value, text: sql, unterminated: true });
	});

	it("counts the lines inside strings and comments for the tokens after them", () => {
		const tokens = tokenizeSql("SELECT 'a\nb\nc' AS x, /* 1\n2 */ y\n  z");
		expect(tokens.map((t) => [t.text.split("\n")[0], t.line, t.column])).toEqual([
			["SELECT", 1, 1],
			["'a", 1, 8],
			["AS", 3, 4],
			["x", 3, 7],
			[",", 3, 8],
			["/* 1", 3, 10],
			["y", 4, 6],
			["z", 5, 3],
		]);
	});
});

describe("splitStatements() edges", () => {
	it.each([
		[
			"a trigger opened with TEMP",
			"CREATE TEMP TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; SELECT 2;",
			2,
		],
		[
			"a trigger opened with TEMPORARY",
			"CREATE TEMPORARY TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END; SELECT 2;",
			2,
		],
		["a CREATE TEMP TABLE is no trigger", "CREATE TEMP TABLE t (x); SELECT 1;", 2],
		["a `;` before the trigger's BEGIN ends it", "CREATE TRIGGER t; SELECT 1;", 2],
		["BEGIN outside a trigger", "BEGIN; SELECT 1; END;", 3],
		[
			"a CASE ... END in the body",
			"CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT CASE WHEN 1 THEN 2 END; SELECT 3; END; SELECT 4;",
			2,
		],
		[
			// A column named end or begin is no body boundary: only `; END ;` ends the trigger.
			"a column named end in the body",
			"CREATE TRIGGER t AFTER INSERT ON x WHEN new.end IS NULL BEGIN UPDATE x SET end = new.start WHERE id = new.id; UPDATE x SET begin = 1, end = 2; END; SELECT 4;",
			2,
		],
		[
			"two triggers in a row",
			"CREATE TRIGGER a AFTER INSERT ON x BEGIN SELECT 1; END; CREATE TRIGGER b AFTER INSERT ON x BEGIN SELECT 2; END;",
			2,
		],
	])("%s", (_, sql, count) => {
		const statements = splitStatements(sql);
		expect(statements).toHaveLength(count);
		expect(statements.every((s) => s.terminated)).toBe(true);
		expect(statements.at(-1)?.text).toMatch(/^(SELECT \d|END|CREATE TRIGGER b.*END)$/);
	});

	it("ends an unterminated statement at its last token", () => {
		const [statement] = splitStatements("  SELECT 1 + 2   \n-- c");
		expect(statement).toMatchObject({
			text: "SELECT 1 + 2",
			offset: 2,
			line: 1,
			column: 3,
			terminated: false,
		});
	});
});

describe("sql helpers", () => {
	const tokens = (sql: string) => tokenizeSql(sql);
	it.each([
		["a keyword", "drop", ["DROP"], true],
		["an identifier", "Users", ["USERS"], true],
		["a string is no word", "'DROP'", ["DROP"], false],
		["a quoted identifier is no word", '"DROP"', ["DROP"], false],
		["another word", "TABLE", ["DROP", "INDEX"], false],
	])("isWord: %s", (_, sql, words, expected) => {
		expect(isWord(tokens(sql)[0], ...words)).toBe(expected);
	});

	it.each([
		["keyword", "TABLE", "TABLE"],
		["identifier", "users", "users"],
		["quoted identifier", '"my table"', "my table"],
		["string", "'legacy'", "legacy"],
		["number", "42", undefined],
		["operator", "(", undefined],
	])("identifierName of a %s", (_, sql, expected) => {
		expect(identifierName(tokens(sql)[0])).toBe(expected);
	});

	it("identifierName and isWord of no token", () => {
		expect(identifierName(undefined)).toBeUndefined();
		expect(isWord(undefined, "A")).toBe(false);
	});

	it("keywordsAt upper-cases words only", () => {
		const [statement] = splitStatements("create table \"T\" ('x');");
		if (!statement) throw new Error("no statement");
		expect(keywordsAt(statement, 5)).toEqual(["CREATE", "TABLE", '"T"', "(", "'x'"]);
	});

	it("startsWithWords needs every word, in order", () => {
		const [statement] = splitStatements("ALTER TABLE t RENAME TO u;");
		if (!statement) throw new Error("no statement");
		expect(startsWithWords(statement, "ALTER", "TABLE")).toBe(true);
		expect(startsWithWords(statement, "ALTER", "INDEX")).toBe(false);
		expect(startsWithWords(statement, "TABLE", "ALTER")).toBe(false);
	});

	it.each([
		["at depth 0 only", "SELECT (SELECT a FROM b) FROM c", "FROM", 0, 7],
		["from an index", "SELECT a FROM b UNION SELECT c FROM d", "FROM", 3, 7],
		["a stray `)` does not go below depth 0", "a ) FROM (x FROM y) FROM", "FROM", 0, 2],
		["absent", "SELECT (FROM)", "FROM", 0, -1],
		["past the end", "SELECT", "SELECT", 5, -1],
	])("findTopLevelWord: %s", (_, sql, word, from, expected) => {
		expect(findTopLevelWord(tokens(sql), word, from)).toBe(expected);
	});
});

describe("sql corners found by mutation testing", () => {
	it.each([
		["0xA1", [["number", "0xA1"]]],
		[
			"1x1",
			[
				["number", "1"],
				["identifier", "x1"],
			],
		],
	])("tokenizeSql(%j)", (sql, expected) => {
		expect(kinds(sql)).toEqual(expected);
	});

	it.each([
		["a number", "1", "1"],
		["an operator", "(", "("],
	])("isWord is false for %s, whatever its text", (_, sql, word) => {
		expect(isWord(tokenizeSql(sql)[0], word)).toBe(false);
	});

	it("findTopLevelWord tracks nested parentheses", () => {
		expect(findTopLevelWord(tokenizeSql("((a) FROM b)"), "FROM")).toBe(-1);
	});

	it.each([
		["CREATE TABLE t (begin TEXT); SELECT 1;", 2],
		["CREATE TEMP TABLE t (begin TEXT); SELECT 1;", 2],
		["CREATE VIEW v AS SELECT 1 AS begin; SELECT 2;", 2],
	])("a column named begin is no trigger body: %j", (sql, count) => {
		expect(splitStatements(sql)).toHaveLength(count);
	});
});
