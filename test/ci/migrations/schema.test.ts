import { describe, expect, it } from "vitest";
import { ledgerTableSql, openD1LikeDatabase, readSchema } from "../../../ci/migrations/replay.ts";
import {
	diffLines,
	diffSchema,
	formatCreateStatement,
	formatSchemaDifferences,
	makeSchema,
	parseSnapshot,
	renderSnapshot,
	type Schema,
} from "../../../ci/migrations/schema.ts";

/** The schema a fresh D1-like database has after running `sql`. */
function schemaOf(sql: string, ledgerTables: readonly string[] = ["d1_migrations"]): Schema {
	const db = openD1LikeDatabase();
	try {
		db.exec(sql);
		return readSchema(db, ledgerTables);
	} finally {
		db.close();
	}
}

const USERS = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);";
const POSTS =
	"CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), title TEXT);";
const INDEX = "CREATE INDEX posts_user_idx ON posts (user_id);";
const VIEW = "CREATE VIEW titles AS SELECT title FROM posts;";
const TRIGGER =
	"CREATE TRIGGER posts_title AFTER INSERT ON posts BEGIN UPDATE posts SET title = trim(NEW.title) WHERE id = NEW.id; END;";

describe("readSchema()", () => {
	it("should not depend on the order objects were created in", () => {
		const a = schemaOf([USERS, POSTS, INDEX, VIEW, TRIGGER].join("\n"));
		const b = schemaOf([USERS, POSTS, TRIGGER, VIEW, INDEX].join("\n"));
		expect(a.objects.map((o) => `${o.type} ${o.name}`)).toEqual([
			"table posts",
			"table users",
			"index posts_user_idx",
			"view titles",
			"trigger posts_title",
		]);
		expect(diffSchema(a, b)).toEqual([]);
		expect(b).toEqual(a);
	});

	it("should ignore whitespace, comments and keyword case", () => {
		const a = schemaOf(`${USERS}\n${POSTS}\n${TRIGGER}`);
		const b = schemaOf(`
			create table users (
				id   INTEGER  primary key, -- the key
				email TEXT NOT NULL UNIQUE /* login */
			);
			CREATE TABLE posts(id INTEGER PRIMARY KEY,user_id INTEGER REFERENCES users(id),title TEXT);
			create trigger posts_title after insert on posts
			begin
				-- normalise titles
				update posts set title = trim(NEW.title) where id = NEW.id;
			end;
		`);
		expect(diffSchema(a, b)).toEqual([]);
	});

	it("should leave out ledger tables, _cf_ and sqlite_ objects", () => {
		const schema = schemaOf(
			[
				ledgerTableSql("d1_migrations"),
				ledgerTableSql("custom_ledger"),
				"CREATE INDEX custom_ledger_idx ON custom_ledger (applied_at);",
				"CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB);",
				"CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER UNIQUE);",
				"ANALYZE;",
			].join("\n"),
			["D1_Migrations", "custom_ledger"],
		);
		expect(schema.objects.map((o) => `${o.type} ${o.name}`)).toEqual(["table counters"]);
	});

	it("should keep a table that merely starts like a ledger or reserved name", () => {
		const schema = schemaOf(
			"CREATE TABLE d1_migrations_notes (x);\nCREATE TABLE cf_things (x);\nCREATE TABLE sqlite (x);",
		);
		expect(schema.objects.map((o) => o.name)).toEqual([
			"cf_things",
			"d1_migrations_notes",
			"sqlite",
		]);
	});
});

describe("formatCreateStatement()", () => {
	it("should print a table one column per line and a trigger one statement per line", () => {
		expect(formatCreateStatement(`${POSTS}`)).toMatchInlineSnapshot(`
			"CREATE TABLE posts (
				id INTEGER PRIMARY KEY,
				user_id INTEGER REFERENCES users (id),
				title TEXT
			)"
		`);
		expect(
			formatCreateStatement(
				"create trigger t after insert on posts begin insert into log values (case when new.id > 1 then 'a;b' else 'c' end); delete from log; end",
			),
		).toMatchInlineSnapshot(`
			"CREATE TRIGGER t AFTER INSERT ON posts BEGIN
				INSERT INTO log VALUES (CASE WHEN new.id > 1 THEN 'a;b' ELSE 'c' END);
				DELETE FROM log;
			END"
		`);
	});
});

describe("diffSchema()", () => {
	it("should report a changed column as `changed` with a readable -/+ diff", () => {
		const snapshot = schemaOf(`${USERS}\n${POSTS}\n${INDEX}`);
		const replayed = schemaOf(
			`${USERS}\n${POSTS.replace("title TEXT", "title TEXT NOT NULL DEFAULT ''")}\n${INDEX}`,
		);
		const differences = diffSchema(snapshot, replayed);
		expect(differences.map((d) => [d.kind, d.type, d.name])).toEqual([
			["changed", "table", "posts"],
		]);
		expect(formatSchemaDifferences(differences)).toMatchInlineSnapshot(`
			"table posts changed:
			      CREATE TABLE posts (
			      	id INTEGER PRIMARY KEY,
			      	user_id INTEGER REFERENCES users (id),
			    + 	title TEXT NOT NULL DEFAULT ''
			    - 	title TEXT
			      )"
		`);
	});

	it("should report added and removed objects with every line marked", () => {
		const differences = diffSchema(
			schemaOf(`${USERS}\n${VIEW.replace("posts", "users")}`),
			schemaOf(`${USERS}\n${INDEX.replace("posts (user_id)", "users (email)")}`),
		);
		expect(formatSchemaDifferences(differences)).toMatchInlineSnapshot(`
			"view titles removed:
			    - CREATE VIEW titles AS SELECT title FROM users
			index posts_user_idx added:
			    + CREATE INDEX posts_user_idx ON users (email)"
		`);
	});

	it("should match object names case-insensitively, as SQLite does", () => {
		const a = makeSchema([
			{ type: "table", name: "Users", tbl_name: "Users", sql: "CREATE TABLE Users (x)" },
		]);
		const b = makeSchema([
			{ type: "table", name: "users", tbl_name: "users", sql: "CREATE TABLE Users (x)" },
		]);
		expect(diffSchema(a, b)).toEqual([]);
	});
});

describe("diffLines()", () => {
	it.each([
		["a\nb\nc", "a\nb\nc", ["  a", "  b", "  c"]],
		["a\nb\nc", "a\nc", ["  a", "- b", "  c"]],
		["a\nc", "a\nb\nc", ["  a", "+ b", "  c"]],
		["a", "b", ["+ b", "- a"]],
		["", "x", ["+ x", "- "]],
	])("should diff %j against %j", (a, b, expected) => {
		expect(diffLines(a, b)).toEqual(expected);
	});
});

describe("renderSnapshot() / parseSnapshot()", () => {
	const full = () => schemaOf([USERS, POSTS, INDEX, VIEW, TRIGGER].join("\n"));

	it("should round-trip a schema through the snapshot text", () => {
		const schema = full();
		const text = renderSnapshot(schema, ["generated for a test", "second line"]);
		expect(text.startsWith("-- generated for a test\n-- second line\n\n")).toBe(true);
		expect(parseSnapshot(text)).toEqual(schema);
	});

	it("should round-trip with CRLF line endings (a Windows checkout)", () => {
		const schema = full();
		const text = renderSnapshot(schema, ["header"]).replace(/\n/g, "\r\n");
		expect(parseSnapshot(text)).toEqual(schema);
	});

	it("should round-trip an empty schema", () => {
		const text = renderSnapshot({ objects: [] }, ["nothing yet"]);
		expect(text).toBe("-- nothing yet\n\n");
		expect(parseSnapshot(text)).toEqual({ objects: [] });
	});

	it("should read a hand-formatted snapshot in any order as the same schema", () => {
		const text = `-- edited by hand\n${TRIGGER}\n\n${VIEW}\n${INDEX}\n${POSTS}\n${USERS}\n`;
		expect(diffSchema(parseSnapshot(text), full())).toEqual([]);
	});

	it("should identify IF NOT EXISTS, UNIQUE indexes and schema-qualified names", () => {
		const schema = parseSnapshot(
			"CREATE TABLE IF NOT EXISTS main.t (x);\nCREATE UNIQUE INDEX IF NOT EXISTS t_x ON t (x);\nSELECT 1;\n",
		);
		expect(schema.objects.map((o) => [o.type, o.name, o.table])).toEqual([
			["table", "t", "t"],
			["index", "t_x", "t"],
		]);
	});
});

describe("makeSchema()", () => {
	const r = (type: string, name: string, sql: string | null, tbl_name = name) => ({
		type,
		name,
		tbl_name,
		sql,
	});

	it("keeps tables, indexes, views and triggers with SQL, sorted by type then name", () => {
		const schema = makeSchema([
			r("trigger", "t_ai", "CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN SELECT 1; END", "t"),
			r("index", "sqlite_autoindex_t_1", null, "t"),
			r("table", "b", "CREATE TABLE b (x)"),
			r("view", "v", "CREATE VIEW v AS SELECT 1"),
			r("index", "t_x", "CREATE INDEX t_x ON t (x)", "t"),
			r("table", "A", "CREATE TABLE A (x)"),
			r("shadow", "odd", "CREATE TABLE odd (x)"),
			r("table", "a", "CREATE TABLE a (x)"),
		]);
		expect(schema.objects.map((o) => `${o.type} ${o.name} ${o.table}`)).toEqual([
			"table A A",
			"table a a",
			"table b b",
			"index t_x t",
			"view v v",
			"trigger t_ai t",
		]);
	});

	it("leaves out every object of an excluded table, whatever its case", () => {
		const schema = makeSchema(
			[
				r("table", "Ledger", "CREATE TABLE Ledger (x)"),
				r("index", "ledger_x", "CREATE INDEX ledger_x ON Ledger (x)", "Ledger"),
				r("table", "kept", "CREATE TABLE kept (x)"),
			],
			["LEDGER"],
		);
		expect(schema.objects.map((o) => o.name)).toEqual(["kept"]);
	});
});

describe("formatCreateStatement() shapes", () => {
	it.each([
		["trailing semicolons", "CREATE INDEX i ON t (a, b);;", "CREATE INDEX i ON t (a, b)"],
		[
			"a virtual table on one line",
			"create virtual table d using fts5(a, b)",
			"CREATE VIRTUAL TABLE d USING fts5 (a, b)",
		],
		[
			"a view on one line",
			"create view v as select a.x, b.y from a, b",
			"CREATE VIEW v AS SELECT a.x, b.y FROM a, b",
		],
		[
			"nested parentheses inside a column",
			"CREATE TABLE t (a TEXT CHECK (a IN ('x', 'y')), b REAL DEFAULT (1.5))",
			"CREATE TABLE t (\n\ta TEXT CHECK (a IN ('x', 'y')),\n\tb REAL DEFAULT (1.5)\n)",
		],
		[
			"a table with a column named virtual",
			"CREATE TABLE t (virtual INTEGER, b)",
			"CREATE TABLE t (\n\tVIRTUAL INTEGER,\n\tb\n)",
		],
		["nothing at all", "", ""],
		[
			"a table constraint",
			"CREATE TABLE t (a, b, PRIMARY KEY (a, b)) WITHOUT ROWID",
			"CREATE TABLE t (\n\ta,\n\tb,\n\tPRIMARY KEY (a, b)\n) WITHOUT ROWID",
		],
		[
			"a trigger with a CASE ... END in its body",
			"CREATE TRIGGER t AFTER UPDATE ON x BEGIN UPDATE x SET a = CASE WHEN 1 THEN 2 END; SELECT 1; END",
			"CREATE TRIGGER t AFTER UPDATE ON x BEGIN\n\tUPDATE x SET a = CASE WHEN 1 THEN 2 END;\n\tSELECT 1;\nEND",
		],
		[
			"a trigger whose body sets a column named end",
			"CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE x SET end = 1 WHERE id = new.id; END",
			"CREATE TRIGGER t AFTER INSERT ON x BEGIN\n\tUPDATE x SET END = 1 WHERE id = new.id;\nEND",
		],
	])("formats %s", (_, sql, expected) => {
		expect(formatCreateStatement(sql)).toBe(expected);
	});
});

describe("parseSnapshot() identities", () => {
	it.each([
		["CREATE TEMP TABLE t (x)", ["table", "t", "t"]],
		["CREATE TEMPORARY VIEW v AS SELECT 1", ["view", "v", "v"]],
		["CREATE VIRTUAL TABLE d USING fts5(body)", ["table", "d", "d"]],
		[
			"CREATE TRIGGER IF NOT EXISTS main.tr AFTER INSERT ON posts BEGIN SELECT 1; END",
			["trigger", "tr", "posts"],
		],
		['CREATE INDEX "Quoted" ON "My Table" (x)', ["index", "Quoted", "My Table"]],
		["CREATE VIEW v AS SELECT * FROM a JOIN b ON a.id = b.id", ["view", "v", "v"]],
		["CREATE INDEX IF NOT EXISTS main.i ON main (x)", ["index", "i", "main"]],
	])("identifies %s", (sql, identity) => {
		const schema = parseSnapshot(`${sql};\n`);
		expect(schema.objects.map((o) => [o.type, o.name, o.table])).toEqual([identity]);
	});

	it.each(["SELECT 1", "INSERT INTO t VALUES (1)", "CREATE", "CREATE SEQUENCE s", "DROP TABLE t"])(
		"skips %s",
		(sql) => {
			expect(parseSnapshot(`${sql};\n`).objects).toEqual([]);
		},
	);
});

// SQLite has no CREATE UNIQUE TABLE / UNIQUE VIEW / VIRTUAL INDEX (a syntax error), and the replay
// never writes one; a hand-edited snapshot holding one still fails the snapshot check as changed.
describe("parseSnapshot() of words SQLite would refuse", () => {
	it.each([
		["CREATE UNIQUE TABLE t (a)", "CREATE TABLE t (a)", "table"],
		["CREATE UNIQUE VIEW v AS SELECT 1", "CREATE VIEW v AS SELECT 1", "view"],
		["CREATE VIRTUAL INDEX i ON t (a)", "CREATE TABLE t (a); CREATE INDEX i ON t (a)", "index"],
	])("%s is that object, and differs from what the migrations make", (snapshot, sql, type) => {
		const read = parseSnapshot(`${snapshot};\n`);
		expect(read.objects.map((o) => o.type)).toEqual([type]);
		const differences = diffSchema(read, schemaOf(sql));
		expect(differences.filter((d) => d.type === type).map((d) => d.kind)).toEqual(["changed"]);
	});
});

describe("renderSnapshot()", () => {
	it("separates objects by a blank line, each ending in ;", () => {
		const schema = makeSchema([
			{ type: "table", name: "a", tbl_name: "a", sql: "CREATE TABLE a (x)" },
			{ type: "index", name: "a_x", tbl_name: "a", sql: "CREATE INDEX a_x ON a (x)" },
		]);
		expect(renderSnapshot(schema, ["h"])).toBe(
			"-- h\n\nCREATE TABLE a (\n\tx\n);\n\nCREATE INDEX a_x ON a (x);\n",
		);
	});
});

describe("diffSchema() kinds", () => {
	it("lists removed and changed objects in the expected order, then added ones", () => {
		const table = (name: string, sql: string) => ({ type: "table", name, tbl_name: name, sql });
		const expected = makeSchema([
			table("a", "CREATE TABLE a (x)"),
			table("b", "CREATE TABLE b (x)"),
		]);
		const actual = makeSchema([table("b", "CREATE TABLE b (y)"), table("c", "CREATE TABLE c (x)")]);
		expect(diffSchema(expected, actual)).toEqual([
			{ kind: "removed", type: "table", name: "a", diff: ["- CREATE TABLE a (", "- \tx", "- )"] },
			{
				kind: "changed",
				type: "table",
				name: "b",
				diff: ["  CREATE TABLE b (", "+ \ty", "- \tx", "  )"],
			},
			{ kind: "added", type: "table", name: "c", diff: ["+ CREATE TABLE c (", "+ \tx", "+ )"] },
		]);
	});
});

describe("parseSnapshot() line endings and fragments", () => {
	it("reads a snapshot with old Mac (CR) line endings", () => {
		const schema = parseSnapshot("-- header\r\rCREATE TABLE a (x);\r");
		expect(schema.objects.map((o) => o.name)).toEqual(["a"]);
	});

	it("does not throw on a CREATE TABLE with no name", () => {
		expect(parseSnapshot("CREATE TABLE;\n").objects.map((o) => [o.type, o.name])).toEqual([
			["table", ""],
		]);
	});
});

describe("diffLines() is a shortest diff", () => {
	// Lines kept ("  ") = the longest common subsequence; the - and + sides rebuild a and b.
	it.each([
		["a\nb\nc\nd\ne", "a\nc\ne\nf", 3],
		["x\na\nb", "a\nb\nx", 2],
		["a\nb\na\nb", "b\na\nb\na", 3],
		["a\nb\nc", "c\nb\na", 1],
		["1\n2\n3\n4\n5\n6", "0\n2\n3\n9\n5\n6\n7", 4],
		["p\nq", "r", 0],
		["a\nb", "c\na\nb", 2],
		["a\nb", "b\nc\na\nb", 2],
		["c\na\nb", "a\nb", 2],
		["a\nx\nb\ny\nc", "a\nb\nc", 3],
		["a\nb\nc", "a\nx\nb\ny\nc", 3],
		["q\na\nb\nc", "a\nb\nc\nq", 3],
		["a\nb\nc\nq", "q\na\nb\nc", 3],
	])("%j against %j keeps %i lines", (a, b, kept) => {
		const diff = diffLines(a, b);
		const side = (drop: string) =>
			diff
				.filter((l) => !l.startsWith(drop))
				.map((l) => l.slice(2))
				.join("\n");
		expect(diff.filter((l) => l.startsWith("  "))).toHaveLength(kept);
		expect(side("+")).toBe(a);
		expect(side("-")).toBe(b);
	});
});
