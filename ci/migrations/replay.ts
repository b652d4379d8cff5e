import Database from "better-sqlite3";
import { DEFAULT_MIGRATIONS_TABLE } from "../constants.ts";
import type { Migration } from "./catalog.ts";
import {
	D1_LIKE_PATTERN_MESSAGE,
	D1_RESULT_COLUMNS_MESSAGE,
	D1_SQLITE_LIMITS,
	D1_TRIGGER_DEPTH_MESSAGE,
	type D1ProgramLookup,
	type D1RowChange,
	type D1SchemaForeignKey,
	findD1Refusal,
	parseRowChange,
	planTriggerPrograms,
	triggerDepth,
} from "./d1-rules.ts";
import { type EmptyTable, fillTables, newFillState, tablesNamedIn } from "./fill.ts";
import { quoteIdentifier, sqlString } from "./literals.ts";
import { makeSchema, SCHEMA_QUERY, type Schema, type SchemaRow } from "./schema.ts";
import {
	isWord,
	isWordIn,
	type SqlStatement,
	type SqlToken,
	splitStatements,
	tokenizeSql,
} from "./sql.ts";

export interface ReplayFailure {
	migration: string;
	path: string;
	/** 1-based line in the migration file of the failing statement (or the file's end for a commit-time failure). */
	line: number;
	statement: string;
	message: string;
	/** SQLite's error code, e.g. SQLITE_ERROR, SQLITE_CONSTRAINT_FOREIGNKEY. */
	code: string | undefined;
}

/** A double-quoted name that matched no column, which D1 (like SQLite with DQS on) read as a string. */
export interface DqsFallback {
	migration: string;
	path: string;
	line: number;
	identifier: string;
	/** The trigger whose WHEN or body holds the name, resolved when this statement fired it. */
	trigger?: string;
}

/** A DROP TABLE whose rows' removal would cascade into child tables on a populated database. */
export interface DropCascade {
	migration: string;
	path: string;
	line: number;
	table: string;
	children: { table: string; onDelete: string }[];
}

export interface ReplayResult {
	ok: boolean;
	dqsFallbacks: DqsFallback[];
	dropCascades: DropCascade[];
	applied: { name: string; durationMs: number }[];
	failure: ReplayFailure | undefined;
	/** Data-carrying replay: the tables the fill could write no row into (later migrations met them empty). */
	emptyTables: EmptyTable[];
	/** Schema after the last migration that applied, ledger tables excluded. */
	schema: Schema;
	durationMs: number;
}

export interface ReplayOptions {
	migrationsTable?: string;
	/** An existing database (e.g. a copy of production for a rehearsal); default a fresh :memory:. */
	database?: Database.Database;
	onMigration?: (name: string, index: number, total: number) => void;
	/** Data-carrying replay: after each migration, give every new or changed table this many rows. */
	fillRows?: number;
	/** Tables whose filled rows share no value (fill.ts `distinct`); default: duplicates outside unique keys. */
	fillDistinct?: ReadonlySet<string> | "all";
}

/** wrangler's ledger DDL, so a replayed database has the same tables a real one has. */
export const ledgerTableSql = (table: string) =>
	`CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table)}(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);`;

/**
 * Exactly the text wrangler sends for one migration: the file, a newline, the ledger INSERT.
 * A last statement without `;` therefore fails here as it does on D1 (`near "INSERT"`).
 */
export const wranglerMigrationQuery = (migration: Pick<Migration, "name" | "sql">, table: string) =>
	`${migration.sql}\nINSERT INTO ${quoteIdentifier(table)} (name)\nvalues (${sqlString(migration.name)});`;

/** Opens a database with D1's defaults: foreign keys enforced, D1's LIKE/GLOB pattern limit. */
export function openD1LikeDatabase(file = ":memory:"): Database.Database {
	const db = new Database(file);
	db.pragma("foreign_keys = ON");
	installD1Limits(db);
	return db;
}

let patternHelper:
	| { like2: Database.Statement; like3: Database.Statement; glob: Database.Statement }
	| undefined;

/**
 * The runtime limits of workerd's setupSecurity() (util/sqlite.c++) that better-sqlite3 cannot
 * set: LIKE/GLOB patterns over SQLITE_LIMIT_LIKE_PATTERN_LENGTH bytes fail as SQLite fails them.
 * The pattern is matched by a second, plain connection so LIKE keeps SQLite's own semantics.
 */
export function installD1Limits(db: Database.Database): void {
	if (patternHelper === undefined) {
		const helper = new Database(":memory:");
		patternHelper = {
			like2: helper.prepare("SELECT like(?, ?)").pluck(),
			like3: helper.prepare("SELECT like(?, ?, ?)").pluck(),
			glob: helper.prepare("SELECT glob(?, ?)").pluck(),
		};
	}
	const helper = patternHelper;
	const checked = (pattern: unknown) => {
		const bytes = pattern === null ? 0 : Buffer.byteLength(String(pattern), "utf8");
		if (bytes > D1_SQLITE_LIMITS.likePatternLength) throw new Error(D1_LIKE_PATTERN_MESSAGE);
	};
	db.function("like", { varargs: true, deterministic: true }, (...args: unknown[]) => {
		checked(args[0]);
		return (args.length === 3 ? helper.like3 : helper.like2).get(...args) as number | null;
	});
	db.function("glob", { deterministic: true }, (pattern: unknown, value: unknown) => {
		checked(pattern);
		return helper.glob.get(pattern, value) as number | null;
	});
}

const ADD_COLUMN = /\balter\b[\s\S]*?\badd\b/i;
const SCHEMA_CHANGE = /\b(create|alter)\b/i;
const COLUMN_COUNT = "SELECT count(*) FROM pragma_table_xinfo(?)";

/** Tables that an `ALTER TABLE t ADD [COLUMN]` in `sql` widens. */
export function tablesGainingColumns(sql: string): string[] {
	if (!ADD_COLUMN.test(sql)) return [];
	return splitStatements(sql)
		.filter(
			(s) =>
				/^alter$/i.test(s.tokens[0]?.text ?? "") &&
				/^add$/i.test(s.tokens.at(s.tokens[3]?.text === "." ? 5 : 3)?.text ?? ""),
		)
		.map((s) => (s.tokens[3]?.text === "." ? s.tokens[4] : s.tokens[2])?.value ?? "");
}

// Names match in any ASCII case (sqlite3StrICmp); the stored spelling is the one SQLite prints.
const STORED_TABLE_NAME =
	"SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE";

/**
 * SQLITE_LIMIT_COLUMN for ALTER TABLE ADD COLUMN, which no static check can see: the first table
 * over it, named as stored (SQLite alter.c sqlite3AlterBeginAddColumn() names its working copy
 * "sqlite_altertab_%s" after the schema's table, not the ALTER's spelling).
 */
export function findWideTable(
	db: Database.Database,
	tables: readonly string[],
): string | undefined {
	if (tables.length === 0) return undefined;
	const count = db.prepare(COLUMN_COUNT).pluck();
	const wide = tables.find((t) => (count.get(t) as number) > D1_SQLITE_LIMITS.column);
	if (wide === undefined) return undefined;
	return (db.prepare(STORED_TABLE_NAME).pluck().get(wide) as string | undefined) ?? wide;
}

/** The failure D1 reports for the ALTER TABLE ... ADD that took `table` over 100 columns. */
function wideTableFailure(migration: Migration, table: string): ReplayFailure {
	const statements = splitStatements(migration.sql);
	const alter =
		statements.findLast(
			(s) =>
				s.tokens[0]?.text.toUpperCase() === "ALTER" &&
				s.tokens.at(s.tokens[3]?.text === "." ? 4 : 2)?.value.toLowerCase() ===
					table.toLowerCase() &&
				/\badd\b/i.test(s.text),
		) ?? statements[0];
	return {
		migration: migration.name,
		path: migration.path,
		line: alter?.line ?? 1,
		statement: alter?.text ?? "",
		// SQLite build.c sqlite3AddColumn(): "too many columns on %s", the working copy's name.
		message: `too many columns on sqlite_altertab_${table}`,
		code: "SQLITE_ERROR",
	};
}

export function readSchema(db: Database.Database, ledgerTables: readonly string[]): Schema {
	return makeSchema(db.prepare(SCHEMA_QUERY).all() as SchemaRow[], ledgerTables);
}

/**
 * Applies migrations in order, each in its own transaction as D1 applies one request, and stops
 * at the first failure with the file, the statement's line and SQLite's message.
 */
export function replayMigrations(
	migrations: readonly Migration[],
	options: ReplayOptions = {},
): ReplayResult {
	const started = performance.now();
	const table = options.migrationsTable ?? DEFAULT_MIGRATIONS_TABLE;
	const db = options.database ?? openD1LikeDatabase();
	if (options.database) installD1Limits(db);
	const applied: ReplayResult["applied"] = [];
	const dqsFallbacks: DqsFallback[] = [];
	const dropCascades: DropCascade[] = [];
	let failure: ReplayFailure | undefined;
	const filled = newFillState();
	const gate: CompileGate = options.database ? readCompileGate(db) : { programs: 0, views: false };
	try {
		db.exec(ledgerTableSql(table));
		for (const [index, migration] of migrations.entries()) {
			options.onMigration?.(migration.name, index, migrations.length);
			if (!migration.readable) {
				failure = {
					migration: migration.name,
					path: migration.path,
					line: 1,
					statement: "",
					message: "the file is unreadable or not valid UTF-8",
					code: undefined,
				};
				break;
			}
			const t0 = performance.now();
			const query = wranglerMigrationQuery(migration, table);
			const refused = findRefusedStatement(migration);
			if (refused) {
				failure = refused;
				break;
			}
			if (DROP_TABLE.test(migration.sql))
				dropCascades.push(...findDropCascades(db, migration, query));
			const compileCheck = needsCompileCheck(db, migration.sql, gate);
			const compileRefused =
				compileCheck && compileCheck !== "after"
					? findCompileRefusal(db, migration, query, { mode: compileCheck, views: gate.views })
					: undefined;
			if (compileRefused) {
				failure = compileRefused;
				break;
			}
			try {
				db.exec("BEGIN");
				db.exec(query);
				const wide = findWideTable(db, tablesGainingColumns(migration.sql));
				if (wide !== undefined) {
					db.exec("ROLLBACK");
					failure = wideTableFailure(migration, wide);
					break;
				}
				if (compileCheck === "after" && writesDeep(db, migration.sql)) {
					db.exec("ROLLBACK");
					failure = findCompileRefusal(db, migration, query, { mode: "pass", views: gate.views });
					if (failure) break;
					db.exec("BEGIN");
					db.exec(query);
				}
				db.exec("COMMIT");
			} catch (error) {
				if (db.inTransaction) db.exec("ROLLBACK");
				const dqs = isDqsMessage((error as Error).message)
					? applyWithDqsFallback(db, migration, query)
					: undefined;
				if (dqs === undefined || "failure" in dqs) {
					// After a fallback the statement D1 fails at is a later one: the pass names it.
					failure =
						dqs?.failure ?? locateFailure(db, migration, query, error as Error & { code?: string });
					break;
				}
				dqsFallbacks.push(...dqs.fallbacks);
			}
			// Only CREATE and ALTER make a table new or change it (a rebuild copies its rows).
			if (options.fillRows && SCHEMA_CHANGE.test(migration.sql)) {
				fillTables(db, {
					rows: options.fillRows,
					exclude: [table],
					state: filled,
					origin: migration.path,
					mentioned: migration.sql,
					distinct: options.fillDistinct,
				});
			}
			applied.push({ name: migration.name, durationMs: performance.now() - t0 });
		}
		return {
			ok: failure === undefined,
			dqsFallbacks,
			dropCascades,
			applied,
			failure,
			// One the last migration left empty met no migration yet: the next run tells.
			emptyTables: [...filled.empty.values()].filter(
				(t) => t.path !== migrations[applied.length - 1]?.path,
			),
			schema: readSchema(db, [table]),
			durationMs: performance.now() - started,
		};
	} finally {
		if (!options.database) db.close();
	}
}

/**
 * What D1 refuses before running a statement (workerd's authorizer and parse-time limits, from
 * d1-rules.ts): refused here without executing, as SQLite would run it (ATTACH would even
 * create a file next to the process).
 */
function findRefusedStatement(migration: Migration): ReplayFailure | undefined {
	const found = findD1Refusal(migration.sql);
	if (found === undefined) return undefined;
	const { statement, refusal } = found;
	const authorizer = refusal.message === "not authorized" || refusal.rule === "transaction";
	return {
		migration: migration.name,
		path: migration.path,
		line: statement.line,
		statement: statement.text,
		message:
			refusal.rule === "attach"
				? "not authorized (D1 does not allow ATTACH or DETACH)"
				: refusal.message,
		code: authorizer ? "SQLITE_AUTH" : "SQLITE_ERROR",
	};
}

const DROP_TABLE = /\bdrop\s+table\b/i;
const CHILDREN_QUERY = `SELECT m.name AS child, f.on_delete AS on_delete FROM sqlite_master m, pragma_foreign_key_list(m.name) f
WHERE m.type = 'table' AND lower(f."table") = lower(?) AND lower(m.name) <> lower(?) AND f.on_delete IN ('CASCADE', 'SET NULL', 'SET DEFAULT')`;

/**
 * DROP TABLE deletes every row first, which fires ON DELETE actions in the children; on D1
 * PRAGMA foreign_keys=OFF is a no-op and defer_foreign_keys does not stop it, so a parent-table
 * rebuild wipes (or nulls) child rows on a populated database. An empty replay cannot see that,
 * so look at the foreign keys at the moment of each DROP (in a pass that is rolled back).
 */
function findDropCascades(
	db: Database.Database,
	migration: Migration,
	query: string,
): DropCascade[] {
	const found: DropCascade[] = [];
	const children = db.prepare(CHILDREN_QUERY);
	db.exec("BEGIN");
	try {
		for (const statement of splitStatements(query)) {
			const words = statement.tokens.slice(0, 5).map((t) => t.text.toUpperCase());
			if (words[0] === "DROP" && words[1] === "TABLE") {
				const nameToken = words[2] === "IF" ? statement.tokens[4] : statement.tokens[2];
				const tableName = nameToken?.value;
				if (tableName) {
					const rows = children.all(tableName, tableName) as { child: string; on_delete: string }[];
					if (rows.length) {
						found.push({
							migration: migration.name,
							path: migration.path,
							line: statement.line,
							table: tableName,
							children: rows.map((r) => ({ table: r.child, onDelete: r.on_delete })),
						});
					}
				}
			}
			db.exec(statement.text + (statement.terminated ? ";" : ""));
		}
	} catch {
		// The real run reports the failure.
	} finally {
		if (db.inTransaction) db.exec("ROLLBACK");
	}
	return found;
}

// SQLite's hint when a double-quoted name matches no column and DQS is off (better-sqlite3's
// build); it prints the name unescaped.
export const DQS_HINT =
	/^no such column: "(.+)" - should this be a string literal in single-quotes\?$/s;

/**
 * D1 runs SQLite with double-quoted string literals allowed (workerd build/BUILD.sqlite3 sets no
 * SQLITE_DQS, so both DQS flags stay on); better-sqlite3 is built with SQLITE_DQS=0. Re-run the
 * migration statement by statement, turning each "name" SQLite cannot resolve into the string
 * 'name' exactly as DQS would, and report every such fallback (it is almost always a bug in the
 * migration). A failure: the statement that still fails (or the COMMIT), as D1 would report it.
 */
function applyWithDqsFallback(
	db: Database.Database,
	migration: Migration,
	query: string,
): { fallbacks: DqsFallback[] } | { failure: ReplayFailure } {
	const fallbacks: DqsFallback[] = [];
	db.exec("BEGIN");
	try {
		for (const statement of splitStatements(query)) {
			const failed = runWithDqsStrings(db, statement, (identifier, trigger) =>
				fallbacks.push({
					migration: migration.name,
					path: migration.path,
					line: statement.line,
					identifier,
					...(trigger === undefined ? {} : { trigger }),
				}),
			);
			if (failed) return { failure: statementFailure(migration, statement, failed) };
		}
		try {
			db.exec("COMMIT");
		} catch (error) {
			return { failure: commitFailure(migration, error as Error & { code?: string }) };
		}
		return { fallbacks };
	} finally {
		if (db.inTransaction) db.exec("ROLLBACK");
	}
}

/** Runs one statement (with the fallback), restoring any trigger it rewrote; SQLite's error if it fails. */
function runWithDqsStrings(
	db: Database.Database,
	statement: SqlStatement,
	onString: (identifier: string, trigger?: string) => void,
): (Error & { code?: string }) | undefined {
	const triggers = makeDqsTriggers();
	try {
		const run = withDqsStrings(db, statement, { attempt: (text) => db.exec(text), triggers });
		if (!run.ok) return run.error as Error & { code?: string };
		for (const [identifier, trigger] of run.strings) onString(identifier, trigger);
		return undefined;
	} finally {
		restoreTriggers(db, triggers);
	}
}

export type DqsAttempt<T> =
	| { ok: true; value: T; text: string; strings: [identifier: string, trigger?: string][] }
	| { ok: false; error: unknown };

/**
 * Attempts one statement (exec or prepare) as SQLite with DQS would read it: first every name
 * nothing can resolve (the rows of INSERT ... VALUES, names no column anywhere has:
 * unresolvableNames), then one name per round as SQLite names it, in the statement or in a
 * trigger it fires (rewritten in `triggers`: the caller restores them). Each round writes at least
 * one more token as a string, so there are at most as many rounds as such names.
 */
export function withDqsStrings<T>(
	db: Database.Database,
	statement: SqlStatement,
	{ attempt, triggers }: { attempt: (text: string) => T; triggers: DqsTriggers },
): DqsAttempt<T> {
	const strings = new Set<SqlToken>();
	const inTriggers: [string, string][] = [];
	const end = statement.terminated ? ";" : "";
	const textOf = () =>
		writeAsStrings(statement.text, statement.tokens, strings, statement.offset) + end;
	// ALTER TABLE checks the views and triggers it may edit: its own fallback (the schema, not the text).
	if (isAlterTable(statement.tokens))
		return alterWithDqsStrings(db, statement, () => attempt(statement.text + end));
	let guessed: SqlToken[] = [];
	let text = statement.text + end;
	for (let round = 0; ; round++) {
		try {
			const value = attempt(text);
			const named = [...new Set([...strings].map((t) => t.value))].map((v): [string] => [v]);
			return { ok: true, value, text, strings: [...named, ...inTriggers] };
		} catch (error) {
			const name = DQS_HINT.exec(error instanceof Error ? error.message : "")?.[1];
			if (name === undefined && guessed.length > 0) {
				// Another failure: SQLite's own rounds give the message D1 would give.
				for (const token of guessed) strings.delete(token);
				guessed = [];
				text = textOf();
				continue;
			}
			if (name === undefined) return { ok: false, error };
			const before = strings.size;
			for (const token of statement.tokens) {
				if (isDoubleQuoted(token) && token.value === name) strings.add(token);
			}
			if (round === 0) {
				for (const token of valuesRowNames(statement.tokens)) strings.add(token);
				guessed = unresolvableNames(db, statement).filter((t) => !strings.has(t));
				for (const token of guessed) strings.add(token);
			}
			if (strings.size > before) {
				text = textOf();
				continue;
			}
			// Not in the statement's own text: in a trigger it fires, or nowhere.
			const rewritten = rewriteTriggerNames(db, triggers, name);
			if (rewritten.length === 0) return { ok: false, error };
			for (const trigger of rewritten) inTriggers.push([name, trigger]);
		}
	}
}

const isDoubleQuoted = (token: SqlToken) =>
	token.kind === "quoted-identifier" && token.text.startsWith('"');

/** `text` with the tokens in `strings` (offsets counted from `base`) written as the strings DQS reads. */
export function writeAsStrings(
	text: string,
	tokens: readonly SqlToken[],
	strings: ReadonlySet<SqlToken>,
	base = 0,
): string {
	let out = "";
	let last = 0;
	for (const token of tokens) {
		if (!strings.has(token)) continue;
		const at = token.offset - base;
		out += `${text.slice(last, at)}${sqlString(token.value)}`;
		last = at + token.text.length;
	}
	return out + text.slice(last);
}

/**
 * The bare double-quoted names in the rows of INSERT/REPLACE ... VALUES, outside any row with a
 * subquery or window: SQLite resolves VALUES with no table in scope (insert.c), so with DQS each
 * is a string. Not function names, qualified names, types (AS) or collations.
 */
export function valuesRowNames(tokens: readonly SqlToken[]): SqlToken[] {
	if (!isWord(tokens[0], "INSERT", "REPLACE")) return [];
	let depth = 0;
	let at = -1;
	for (let n = 1; n < tokens.length && at < 0; n++) {
		const text = tokens[n]?.text;
		if (text === "(") depth++;
		else if (text === ")") depth--;
		else if (depth === 0 && isWord(tokens[n], "SELECT")) return [];
		else if (depth === 0 && isWord(tokens[n], "VALUES")) at = n + 1;
	}
	const found: SqlToken[] = [];
	while (at > 0 && tokens[at]?.text === "(") {
		const end = closingParen(tokens, at);
		const row = tokens.slice(at + 1, end);
		if (!row.some((t) => isWord(t, "SELECT", "OVER"))) {
			for (const [i, token] of row.entries()) {
				const before = row[i - 1];
				const after = row[i + 1];
				if (!isDoubleQuoted(token) || after?.text === "." || after?.text === "(") continue;
				if (before?.text === "." || isWord(before, "AS", "COLLATE")) continue;
				found.push(token);
			}
		}
		at = tokens[end + 1]?.text === "," ? end + 2 : -1;
	}
	return found;
}

/** The index of the `)` closing the `(` at `open` (the end when unbalanced). */
function closingParen(tokens: readonly SqlToken[], open: number): number {
	let depth = 0;
	for (let n = open; n < tokens.length; n++) {
		if (tokens[n]?.text === "(") depth++;
		else if (tokens[n]?.text === ")" && --depth === 0) return n;
	}
	return tokens.length;
}

// Where a token starts an expression operand: after an operator, `(`, `,` or a word an
// expression follows (a name there that is an index, table or column is known, so never guessed).
const OPERAND_AFTER = new Set([
	..."(,=<>+-*/%&|~",
	...["==", "!=", "<>", "<=", ">=", "||", "<<", ">>", "->", "->>"],
]);
const OPERAND_AFTER_WORDS = new Set(
	`IN AND OR NOT IS LIKE GLOB MATCH REGEXP ESCAPE BETWEEN CASE WHEN THEN ELSE WHERE HAVING ON
	SELECT DISTINCT ALL BY LIMIT OFFSET RETURNING`.split(/\s+/),
);
// Statements with names that come from no schema column: CTEs, windows, table-valued functions.
const OWN_NAMES = /^(?:with|over|window|json_each|json_tree|pragma_.*)$/i;
const ALL_COLUMNS =
	"SELECT p.name FROM sqlite_schema s, pragma_table_xinfo(s.name) p WHERE s.type IN ('table', 'view')";

/**
 * The double-quoted operands of a row-changing or SELECT statement that nothing can resolve: a
 * name that is no column of any table or view (nor a table's, for FTS5's hidden column), no rowid
 * alias, no columnN of a VALUES subquery, and not written anywhere else in the statement (an alias,
 * a string alias). SQLite resolves a bare name only to such columns (resolve.c lookupName()), so
 * with DQS each is a string; the rest goes one name per round.
 */
export function unresolvableNames(db: Database.Database, statement: SqlStatement): SqlToken[] {
	const tokens = statement.tokens;
	if (!isWord(tokens[0], "SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE")) return [];
	if (
		tokens.some((t) => (t.kind === "keyword" || t.kind === "identifier") && OWN_NAMES.test(t.text))
	)
		return [];
	const operand = (i: number) => {
		const token = tokens[i] as SqlToken;
		const before = tokens[i - 1];
		const after = tokens[i + 1]?.text;
		return (
			isDoubleQuoted(token) &&
			after !== "(" &&
			after !== "." &&
			(OPERAND_AFTER.has(before?.text ?? "") || isWordIn(before, OPERAND_AFTER_WORDS))
		);
	};
	const known = new Set(["rowid", "oid", "_rowid_"]);
	try {
		for (const name of db.prepare(ALL_COLUMNS).pluck().all() as string[])
			known.add(name.toLowerCase());
		for (const name of db.prepare("SELECT name FROM sqlite_schema").pluck().all() as string[])
			known.add(name.toLowerCase());
	} catch {
		return []; // A broken view: leave every name to SQLite.
	}
	const candidates: SqlToken[] = [];
	for (const [i, token] of tokens.entries()) {
		if (operand(i)) candidates.push(token);
		else if (token.kind !== "number" && token.kind !== "operator")
			known.add(token.value.toLowerCase());
	}
	return candidates.filter((t) => {
		const name = t.value.toLowerCase();
		return !known.has(name) && !/^column\d+$/.test(name);
	});
}

/** Triggers recreated with some "names" written as strings while one statement runs. */
export interface DqsTriggers {
	/** Per table (lower case): its triggers as written, in schema order, before the first rewrite. */
	tables: Map<string, { name: string; sql: string }[]>;
	/** Per trigger (lower case): the tokens of its text written as strings so far. */
	strings: Map<string, Set<SqlToken>>;
	tokens: Map<string, SqlToken[]>;
}

export const makeDqsTriggers = (): DqsTriggers => ({
	tables: new Map(),
	strings: new Map(),
	tokens: new Map(),
});

const TABLE_OR_VIEW =
	"SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE";
const TRIGGERS_OF =
	"SELECT name, tbl_name AS tbl, sql FROM sqlite_schema WHERE type = 'trigger' AND sql IS NOT NULL ORDER BY rowid";

/**
 * SQLite resolves a trigger's WHEN and body when the trigger fires (trigger.c codeRowTrigger()),
 * so D1 reads an unresolvable "name" there as a string only then. Recreates every trigger whose
 * WHEN or body holds "name" with it written as a string (its table's triggers all again, in
 * their order: SQLite fires them newest first); the names of those triggers, none when none does.
 */
export function rewriteTriggerNames(
	db: Database.Database,
	state: DqsTriggers,
	name: string,
): string[] {
	const rows = db.prepare(TRIGGERS_OF).all() as { name: string; tbl: string; sql: string }[];
	const rewritten: string[] = [];
	const touched = new Set<string>();
	for (const row of rows) {
		const key = row.name.toLowerCase();
		const table = row.tbl.toLowerCase();
		const original = state.tables.get(table)?.find((t) => t.name.toLowerCase() === key)?.sql;
		const tokens = state.tokens.get(key) ?? tokenizeSql(original ?? row.sql);
		const body = tokens.findIndex((t) => isWord(t, "WHEN", "BEGIN"));
		const strings = state.strings.get(key) ?? new Set<SqlToken>();
		const fresh = tokens.filter(
			(t, i) => i > body && body >= 0 && isDoubleQuoted(t) && t.value === name && !strings.has(t),
		);
		if (fresh.length === 0) continue;
		if (!state.tables.has(table)) {
			state.tables.set(
				table,
				rows
					.filter((r) => r.tbl.toLowerCase() === table)
					.map((r) => ({ name: r.name, sql: r.sql })),
			);
		}
		for (const token of fresh) strings.add(token);
		state.strings.set(key, strings);
		state.tokens.set(key, tokens);
		rewritten.push(row.name);
		touched.add(table);
	}
	try {
		for (const table of touched) recreateTriggers(db, state, table, true);
	} catch {
		return []; // SQLite refused the rewritten text: the statement fails as it is.
	}
	return rewritten;
}

/** Puts back, as written and in their order, the triggers of every table rewriteTriggerNames touched. */
export function restoreTriggers(db: Database.Database, state: DqsTriggers): void {
	for (const table of state.tables.keys()) recreateTriggers(db, state, table, false);
	state.tables.clear();
	state.strings.clear();
	state.tokens.clear();
}

function recreateTriggers(
	db: Database.Database,
	state: DqsTriggers,
	table: string,
	withStrings: boolean,
): void {
	const triggers = state.tables.get(table) ?? [];
	// The statement dropped the table (and so its triggers): nothing to put back.
	if (db.prepare(TABLE_OR_VIEW).pluck().get(table) === undefined) return;
	replaceTriggers(db, triggers, (t) => {
		const key = t.name.toLowerCase();
		const strings = withStrings ? state.strings.get(key) : undefined;
		const tokens = state.tokens.get(key);
		return strings && tokens ? writeAsStrings(t.sql, tokens, strings) : t.sql;
	});
}

/** Drops a table's triggers, then creates each with `textOf` it, in their order (SQLite fires them newest first). */
function replaceTriggers<T extends { name: string; sql: string }>(
	db: Database.Database,
	triggers: readonly T[],
	textOf: (trigger: T) => string,
): void {
	for (const t of triggers) db.exec(`DROP TRIGGER IF EXISTS ${quoteIdentifier(t.name)}`);
	for (const t of triggers) db.exec(textOf(t));
}

// SQLite's message when ALTER TABLE's check of the schema (alter.c renameTestSchema()) meets a
// double-quoted name in a trigger or view that matches no column, with DQS off. workerd
// 1.20261117.1 embeds the same SQLite as better-sqlite3 (3.54.1, source id 2026-10-16 555e07ef).
const ALTER_DQS_HINT =
	/^error in (trigger|view) (.+?): no such column: "(.+)" - should this be a string literal in single-quotes\?$/s;

/** True when SQLite refused a double-quoted name that D1 (DQS on) would read as a string. */
export const isDqsMessage = (message: string): boolean =>
	DQS_HINT.test(message) || ALTER_DQS_HINT.test(message);

const significant = (tokens: readonly SqlToken[]) =>
	tokens.filter((t) => t.kind !== "line-comment" && t.kind !== "block-comment");

export const isAlterTable = (tokens: readonly SqlToken[]): boolean => {
	const [first, second] = significant(tokens);
	return isWord(first, "ALTER") && isWord(second, "TABLE");
};

/**
 * RENAME [COLUMN] a TO b and DROP [COLUMN] first rewrite the double-quoted strings of every view
 * and trigger as single-quoted (alter.c renameFixQuotes(), sqlite_rename_quotefix); RENAME TO and
 * ADD COLUMN leave them as written (checked on workerd's D1: d1-cases.ts, d1-rules.e2e.test.ts).
 */
export function quotefixesSchema(tokens: readonly SqlToken[]): boolean {
	const words = significant(tokens);
	// After ALTER TABLE and the table's name (a quoted "drop" there is a name, not the verb).
	const at = words.findIndex((t, i) => i > 2 && isWord(t, "RENAME", "DROP"));
	if (at < 0) return false;
	return isWord(words[at], "DROP") || !isWord(words[at + 1], "TO");
}

interface SchemaText {
	type: string;
	name: string;
	tbl: string;
	sql: string;
}
const TRIGGERS_AND_VIEWS =
	"SELECT type, name, tbl_name AS tbl, sql FROM sqlite_schema WHERE type IN ('trigger', 'view') AND sql IS NOT NULL ORDER BY rowid";

/** Per view or trigger rewritten (lower case): its text before the ALTER, and per string token of its rewritten text, the double-quoted text it had (undefined: written as a string). */
interface AlterDqsState {
	before: Map<string, SchemaText>;
	quoted: Map<string, (string | undefined)[]>;
}

/**
 * Runs an ALTER TABLE as SQLite with DQS on would: while its schema check names a double-quoted
 * name in a trigger or view, that view or trigger is recreated with the name written as a string,
 * and the ALTER retried (each round writes at least one more token, so rounds are bounded). After
 * it, the stored text is D1's: single-quoted after RENAME COLUMN / DROP COLUMN (quotefix), the
 * double quotes put back otherwise. A failure puts every object back as it was.
 */
export function alterWithDqsStrings<T>(
	db: Database.Database,
	statement: SqlStatement,
	attempt: () => T,
): DqsAttempt<T> {
	const state: AlterDqsState = { before: new Map(), quoted: new Map() };
	for (;;) {
		try {
			const value = attempt();
			if (state.quoted.size > 0 && !quotefixesSchema(statement.tokens))
				putBackDoubleQuotes(db, state);
			return { ok: true, value, text: statement.text, strings: [] };
		} catch (error) {
			const hint = ALTER_DQS_HINT.exec(error instanceof Error ? error.message : "");
			if (hint === null || !rewriteObjectName(db, state, hint[2] as string, hint[3] as string)) {
				for (const object of state.before.values()) recreateObject(db, object, object.sql);
				return { ok: false, error };
			}
		}
	}
}

/** Recreates one view or trigger with the double-quoted `name` in its body written as a string; false when it holds none. */
function rewriteObjectName(
	db: Database.Database,
	state: AlterDqsState,
	objectName: string,
	name: string,
): boolean {
	const rows = db.prepare(TRIGGERS_AND_VIEWS).all() as SchemaText[];
	const object = rows.find((r) => r.name.toLowerCase() === objectName.toLowerCase());
	if (object === undefined) return false;
	const key = object.name.toLowerCase();
	const tokens = tokenizeSql(object.sql);
	const body = bodyStart(tokens, object.type);
	// Not a qualified name, a function, or an alias (AS "x"): SQLite reads none of them as a string.
	const strings = new Set(
		tokens.filter((t, i) => {
			const before = tokens[i - 1];
			const after = tokens[i + 1]?.text;
			return (
				body >= 0 &&
				i > body &&
				isDoubleQuoted(t) &&
				t.value === name &&
				after !== "." &&
				after !== "(" &&
				before?.text !== "." &&
				!isWord(before, "AS")
			);
		}),
	);
	if (strings.size === 0) return false;
	const previous = state.quoted.get(key) ?? [];
	const quoted: (string | undefined)[] = [];
	let seen = 0;
	for (const token of tokens) {
		if (token.kind === "string") quoted.push(previous[seen++]);
		else if (strings.has(token)) quoted.push(token.text);
	}
	try {
		recreateObject(db, object, writeAsStrings(object.sql, tokens, strings));
	} catch {
		return false; // SQLite refused the rewritten text: the ALTER fails as it is.
	}
	if (!state.before.has(key)) state.before.set(key, object);
	state.quoted.set(key, quoted);
	return true;
}

/** The index of the token a trigger's WHEN/body or a view's SELECT starts after (-1: none). */
function bodyStart(tokens: readonly SqlToken[], type: string): number {
	if (type === "trigger") return tokens.findIndex((t) => isWord(t, "WHEN", "BEGIN"));
	let depth = 0;
	for (const [i, token] of tokens.entries()) {
		if (token.text === "(") depth++;
		else if (token.text === ")") depth--;
		else if (depth === 0 && isWord(token, "AS")) return i;
	}
	return -1;
}

/** After RENAME TO: the strings this ALTER wrote double-quoted again, in the text SQLite stored. */
function putBackDoubleQuotes(db: Database.Database, state: AlterDqsState): void {
	const rows = db.prepare(TRIGGERS_AND_VIEWS).all() as SchemaText[];
	for (const [key, quoted] of state.quoted) {
		const object = rows.find((r) => r.name.toLowerCase() === key);
		if (object === undefined) continue;
		const strings = tokenizeSql(object.sql).filter((t) => t.kind === "string");
		// The rename edits names only, never a string: the n-th string is still the n-th.
		if (strings.length !== quoted.length) continue;
		let sql = "";
		let last = 0;
		for (const [n, token] of strings.entries()) {
			const text = quoted[n];
			if (text === undefined) continue;
			sql += object.sql.slice(last, token.offset) + text;
			last = token.offset + token.text.length;
		}
		recreateObject(db, object, sql + object.sql.slice(last));
	}
}

/** Recreates a view, or a trigger with every trigger of its table (replaceTriggers). */
function recreateObject(db: Database.Database, object: SchemaText, sql: string): void {
	if (object.type === "view") {
		db.exec(`DROP VIEW IF EXISTS ${quoteIdentifier(object.name)}`);
		db.exec(sql);
		return;
	}
	const table = object.tbl.toLowerCase();
	const siblings = (db.prepare(TRIGGERS_AND_VIEWS).all() as SchemaText[]).filter(
		(r) => r.type === "trigger" && r.tbl.toLowerCase() === table,
	);
	if (!siblings.some((r) => r.name.toLowerCase() === object.name.toLowerCase()))
		siblings.push(object);
	replaceTriggers(db, siblings, (t) =>
		t.name.toLowerCase() === object.name.toLowerCase() ? sql : t.sql,
	);
}

/** The failure of one statement, with SQLite's message and code. */
const statementFailure = (
	migration: Migration,
	statement: SqlStatement,
	error: Error & { code?: string },
): ReplayFailure => ({
	migration: migration.name,
	path: migration.path,
	line: statement.line,
	statement: statement.text,
	message: error.message,
	code: error.code,
});

/** A failure at COMMIT (deferred foreign keys): no statement to name, so the file's end. */
const commitFailure = (migration: Migration, error: Error & { code?: string }): ReplayFailure => ({
	migration: migration.name,
	path: migration.path,
	line: migration.sql.trimEnd().split("\n").length,
	statement: "(at commit)",
	message: error.message,
	code: error.code,
});

// Re-runs the statements one by one inside a transaction that is always rolled back, to find
// the one SQLite refuses; a failure at COMMIT (deferred foreign keys) points at the file's end.
function locateFailure(
	db: Database.Database,
	migration: Migration,
	query: string,
	error: Error & { code?: string },
): ReplayFailure {
	const statements = splitStatements(query);
	try {
		db.exec("BEGIN");
		for (const statement of statements) {
			try {
				db.exec(statement.text + (statement.terminated ? ";" : ""));
			} catch (inner) {
				return statementFailure(migration, statement, inner as Error & { code?: string });
			}
		}
	} finally {
		if (db.inTransaction) db.exec("ROLLBACK");
	}
	return commitFailure(migration, error);
}

export interface DataReplayResult {
	/** The data-carrying replay whose verdict counts (rows made distinct where duplicates tripped). */
	result: ReplayResult;
	/** Failures that only rows sharing values outside every unique key cause (UNIQUE over existing data). */
	duplicateFailures: ReplayFailure[];
}

// Each attempt makes the rows of the tables a failure named distinct; bounded, then all distinct.
const DUPLICATE_ATTEMPTS = 6;
const UNIQUE_FAILURE = /^SQLITE_CONSTRAINT_(?:UNIQUE|PRIMARYKEY)$/;
const passed = (result: ReplayResult, migration: string) =>
	result.applied.some((a) => a.name === migration);
// Past the statement that failed: a later one of the same migration may still fail.
const gotPast = (result: ReplayResult, failed: ReplayFailure) =>
	passed(result, failed.migration) ||
	(result.failure?.migration === failed.migration &&
		(result.failure.line !== failed.line || result.failure.statement !== failed.statement));

/**
 * The data-carrying replay with duplicate values in the columns no unique key covers, as
 * populated tables hold them. A failure that goes away once the rows of the tables its statement
 * names are made distinct depends on the data production holds: it is reported apart, and the
 * replay goes on with those rows distinct. Costs nothing while nothing fails.
 */
export function replayWithDuplicates(
	migrations: readonly Migration[],
	options: ReplayOptions & { fillRows: number },
): DataReplayResult {
	const distinct = new Set<string>();
	const duplicateFailures: ReplayFailure[] = [];
	let suspect: ReplayFailure | undefined;
	for (let attempt = 0; ; attempt++) {
		const result = replayMigrations(migrations, { ...options, fillDistinct: distinct });
		if (suspect && gotPast(result, suspect)) duplicateFailures.push(suspect);
		suspect = undefined;
		const failure = result.failure;
		// A repeated value breaks nothing but a unique key: other failures are the rows' own.
		if (!UNIQUE_FAILURE.test(failure?.code ?? "") || failure === undefined) {
			return { result, duplicateFailures };
		}
		const fresh = tablesNamedIn(failure.statement).filter((t) => !distinct.has(t));
		if (fresh.length > 0 && attempt < DUPLICATE_ATTEMPTS) {
			for (const table of fresh) distinct.add(table);
			suspect = failure;
			continue;
		}
		// Not the named tables: the replay with no duplicates at all is the data verdict.
		const plain = replayMigrations(migrations, { ...options, fillDistinct: "all" });
		if (passed(plain, failure.migration)) duplicateFailures.push(failure);
		return { result: plain, duplicateFailures };
	}
}

// ---- SQLite limits checked while a statement compiles (workerd util/sqlite.c++ setupSecurity()) ----

interface CompileModel {
	version: number;
	/** Null while the schema holds no more trigger programs than the depth limit: none nests past it. */
	programs?: D1ProgramLookup | null;
	/** Views of more than 100 columns: SQLite expands them on every use and refuses that. */
	wideViews?: string[];
}

const compileModels = new WeakMap<Database.Database, CompileModel>();

interface CompileQueries {
	version: Database.Statement;
	actionTables: Database.Statement;
	triggers: Database.Statement;
	views: Database.Statement;
	foreignKeys: Database.Statement;
	width: Database.Statement;
}

// Prepared once per connection: the model is read again after many migrations.
const compileQueries = new WeakMap<Database.Database, CompileQueries>();
function queriesFor(db: Database.Database): CompileQueries {
	let queries = compileQueries.get(db);
	if (queries === undefined) {
		queries = {
			version: db.prepare("PRAGMA schema_version").pluck(),
			// Rows as arrays: a re-prepared statement (after each schema change) would otherwise
			// compile a new row constructor (better-sqlite3 row-builder.cpp GetRowJS).
			actionTables: db.prepare(ACTION_TABLES).raw(true),
			triggers: db.prepare(schemaOfType("trigger")).raw(true),
			views: db.prepare(schemaOfType("view")).raw(true),
			foreignKeys: db.prepare(FOREIGN_KEYS).raw(true),
			width: db.prepare("SELECT count(*) FROM pragma_table_xinfo(?)").pluck(),
		};
		compileQueries.set(db, queries);
	}
	return queries;
}
// A `*` in a result list: after SELECT [DISTINCT|ALL], after a comma, or `table.*`.
const RESULT_STAR = /(?:\bselect\s+(?:distinct\s+|all\s+)?|,\s*|\.\s*)\*/i;
const MAKES_PROGRAMS =
	/\bcreate\s+trigger\b|\bon\s+(?:delete|update)\s+(?:cascade|set\s+(?:null|default)|restrict)\b/gi;
const DML = /\b(?:insert|replace|update|delete|drop)\b/i;
// A trigger body's steps compile only when the trigger fires (roughly: to its END;).
const TRIGGER_BODY = /\bcreate\s+trigger\b[\s\S]*?\bend\s*;/gi;
// Only a view with a `*` or 100 result terms can be wider than 100 columns.
const mayBeWideView = (sql: string) =>
	/\bcreate\s+view\b/i.test(sql) && (RESULT_STAR.test(sql) || countMatches(sql, /,/g) >= 99);
const FOREIGN_KEYS = `SELECT ? AS child, id, "table" AS parent, "from", "to", on_delete AS onDelete, on_update AS onUpdate FROM pragma_foreign_key_list(?)`;
// Every text HAS_ACTION matches holds "delete" or "update" in some ASCII case (lower() folds
// ASCII); the others stay in SQLite instead of being copied into JavaScript after each migration.
// instr, not LIKE: the replay's `like` is a JavaScript function (installD1Limits).
const ACTION_TABLES =
	"SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL AND (instr(lower(sql), 'delete') > 0 OR instr(lower(sql), 'update') > 0)";
const HAS_ACTION = /\bon\s+(?:delete|update)\s+(?:cascade|set\s+(?:null|default)|restrict)\b/i;
// Per table text: after each migration only new or changed tables are asked again.
const actionKeys = new Map<string, { sql: string; keys: D1SchemaForeignKey[] }>();

const foreignKeyOf = ([child, id, parent, from, to, onDelete, onUpdate]: unknown[]) =>
	({ child, id, parent, from, to, onDelete, onUpdate }) as D1SchemaForeignKey;

/** The foreign keys of every table whose text names an ON DELETE/UPDATE action. */
function readActionKeys(db: Database.Database): D1SchemaForeignKey[] {
	const queries = queriesFor(db);
	const tables = queries.actionTables.all() as [name: string, sql: string][];
	const keys: D1SchemaForeignKey[] = [];
	for (const [name, sql] of tables) {
		const cached = actionKeys.get(name);
		let found = cached?.sql === sql ? cached.keys : undefined;
		if (found === undefined) {
			if (actionKeys.size > 10_000) actionKeys.clear();
			found = HAS_ACTION.test(sql)
				? (queries.foreignKeys.all(name, name) as unknown[][]).map(foreignKeyOf)
				: [];
			actionKeys.set(name, { sql, keys: found });
		}
		keys.push(...found);
	}
	return keys;
}
function schemaOfType(type: string): string {
	return `SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = '${type}' AND sql IS NOT NULL ORDER BY rowid DESC`;
}

const countMatches = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;

/** The model of the current schema version; its parts are read when first asked for. */
function compileModel(db: Database.Database): CompileModel {
	const version = queriesFor(db).version.get() as number;
	const cached = compileModels.get(db);
	if (cached?.version === version) return cached;
	const model: CompileModel = { version };
	compileModels.set(db, model);
	return model;
}

function triggerPrograms(db: Database.Database): D1ProgramLookup | null {
	const model = compileModel(db);
	if (model.programs !== undefined) return model.programs;
	const triggers = (queriesFor(db).triggers.all() as [string, string, string][]).map(
		([name, tbl_name, sql]) => ({ name, tbl_name, sql }),
	);
	const foreignKeys = readActionKeys(db);
	const actions = new Set(foreignKeys.map((k) => `${k.child}\0${k.id}`)).size;
	if (triggers.length + actions <= D1_SQLITE_LIMITS.triggerDepth) {
		model.programs = null;
		return null;
	}
	// The same triggers and keys as last time (most migrations touch neither): the same lookup.
	const last = lastPrograms.get(db);
	if (
		last !== undefined &&
		last.triggers.length === triggers.length &&
		last.foreignKeys.length === foreignKeys.length &&
		last.foreignKeys.every((k, i) => k === foreignKeys[i]) &&
		last.triggers.every((t, i) => t.name === triggers[i]?.name && t.sql === triggers[i]?.sql)
	) {
		model.programs = last.programs;
		return last.programs;
	}
	model.programs = planTriggerPrograms({
		triggers: triggers.map((t) => ({ name: t.name, table: t.tbl_name, sql: t.sql })),
		foreignKeys,
	});
	lastPrograms.set(db, { triggers, foreignKeys, programs: model.programs });
	return model.programs;
}

const lastPrograms = new WeakMap<
	Database.Database,
	{
		triggers: { name: string; sql: string }[];
		foreignKeys: D1SchemaForeignKey[];
		programs: D1ProgramLookup;
	}
>();

function wideViews(db: Database.Database): string[] {
	const model = compileModel(db);
	if (model.wideViews !== undefined) return model.wideViews;
	const { width, views } = queriesFor(db);
	model.wideViews = (views.all() as [name: string][])
		.filter(([name]) => {
			try {
				return (width.get(name) as number) > D1_SQLITE_LIMITS.column;
			} catch {
				return false; // A broken view fails on use anyway, as SQLite fails it.
			}
		})
		.map(([name]) => name.toLowerCase());
	return model.wideViews;
}

/** What the replay knows without reading the schema: bounds that skip the checks on most migrations. */
export interface CompileGate {
	/** Trigger programs (triggers, FK actions) ever created: at most this many can nest. */
	programs: number;
	/** A view was created: one may be over 100 columns. */
	views: boolean;
}

/** The gate for a database the replay did not create (a rehearsal copy): read once. */
export function readCompileGate(db: Database.Database): CompileGate {
	const sql =
		(db.prepare("SELECT group_concat(sql, ';') FROM sqlite_schema").pluck().get() as
			| string
			| null) ?? "";
	return { programs: countMatches(sql, MAKES_PROGRAMS), views: mayBeWideView(sql) };
}

// A migration that drops or alters something changes, between its statements, what a later one
// compiles against: judged as it runs (the rolled-back pass), not on the schema before it.
const CHANGES_AS_IT_RUNS = /\b(?:drop|alter)\b/i;

/**
 * Whether a migration needs the statement-by-statement compile check: a `*` result list, a use
 * of a view over 100 columns, or a row change where enough trigger programs exist to nest past
 * the limit (checked up front when the migration adds none, else in a rolled-back pass).
 */
function needsCompileCheck(
	db: Database.Database,
	sql: string,
	gate: CompileGate,
): "pass" | "statements" | "after" | undefined {
	const created = countMatches(sql, MAKES_PROGRAMS);
	gate.programs += created;
	const createsView = mayBeWideView(sql);
	gate.views ||= createsView;
	// A view the migration creates may be used by its later statements: run them to see.
	if (createsView) return "pass";
	// Checked against the schema before the migration (unless it drops or alters something); a
	// SELECT it cannot prepare then (a table the migration creates) sends it to the rolled-back pass.
	if (RESULT_STAR.test(sql)) return CHANGES_AS_IT_RUNS.test(sql) ? "pass" : "statements";
	if (gate.views) {
		const lower = sql.toLowerCase();
		if (wideViews(db).some((v) => lower.includes(v))) return "pass";
	}
	if (gate.programs <= D1_SQLITE_LIMITS.triggerDepth) return undefined;
	// Row changes outside trigger bodies and `ON DELETE CASCADE` clauses.
	if (!DML.test(sql.replace(TRIGGER_BODY, "").replace(MAKES_PROGRAMS, ""))) return undefined;
	if (writesDeep(db, sql))
		return created > 0 || CHANGES_AS_IT_RUNS.test(sql) ? "pass" : "statements";
	// New programs: judged on the schema the migration leaves (a rebuild's tables), before COMMIT.
	return created > 0 ? "after" : undefined;
}

/** Whether a table the migration writes can nest past the limit (any columns): most stop here. */
function writesDeep(db: Database.Database, sql: string): boolean {
	const programs = triggerPrograms(db);
	if (programs === null) return false;
	return [...sql.matchAll(WRITTEN_TABLE)].some((m) => {
		const verb = (m[0].match(/^\w+/)?.[0] ?? "").toUpperCase();
		const change: D1RowChange = {
			table: unquoteName(m[1] ?? ""),
			op:
				verb === "INSERT" || verb === "REPLACE"
					? "INSERT"
					: verb === "UPDATE"
						? "UPDATE"
						: "DELETE",
			withoutTriggers: verb === "DROP",
		};
		return triggerDepth(programs, change) > D1_SQLITE_LIMITS.triggerDepth;
	});
}

// The table after INSERT/REPLACE INTO, UPDATE [OR x], DELETE FROM or DROP TABLE [IF EXISTS].
const WRITTEN_TABLE =
	/\b(?:(?:insert|replace)(?:\s+or\s+\w+)?\s+into|update(?:\s+or\s+\w+)?|delete\s+from|drop\s+table(?:\s+if\s+exists)?)\s+(?:[\w$]+\s*\.\s*)?("(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w$]+)/gi;
const unquoteName = (name: string) =>
	(/^["`[]/.test(name) ? name.slice(1, -1).replace(/""/g, '"') : name).toLowerCase();

/** The first SELECT (from token `start`) to its closing parenthesis or the statement's end. */
function selectText(statement: SqlStatement, start: number): string {
	const tokens = statement.tokens;
	let depth = 0;
	let end = tokens.length;
	for (let n = start; n < tokens.length; n++) {
		const text = tokens[n]?.text;
		if (text === "(") depth++;
		else if (text === ")" && --depth < 0) {
			end = n;
			break;
		}
	}
	const first = tokens[start] as SqlToken;
	const last = tokens[end - 1] as SqlToken;
	return statement.text.slice(
		first.offset - statement.offset,
		last.offset - statement.offset + last.text.length,
	);
}

/**
 * What SQLite refuses while compiling one statement with D1's limits, which better-sqlite3 cannot
 * set: SQLITE_LIMIT_COLUMN on a result set once `*` and views are expanded (select.c
 * selectExpander(), "too many columns in result set") and SQLITE_LIMIT_TRIGGER_DEPTH (trigger.c
 * codeRowTrigger()). Run on the schema as it is when the statement runs.
 */
export function findCompileLimitRefusal(
	db: Database.Database,
	statement: SqlStatement,
): string | undefined {
	const found = checkCompileLimits(db, statement, { views: true });
	return found === UNPREPARED ? undefined : found;
}

// A SELECT that could not be prepared alone (a correlated subquery, a table not created yet).
const UNPREPARED = Symbol("unprepared");

function checkCompileLimits(
	db: Database.Database,
	statement: SqlStatement,
	{ views: checkViews }: { views: boolean },
): string | typeof UNPREPARED | undefined {
	const tokens = statement.tokens;
	const lower = statement.text.toLowerCase();
	const views = checkViews && /\bfrom\b|\bjoin\b/i.test(lower) ? wideViews(db) : [];
	const viewUsed = views.some((v) => lower.includes(v));
	let unprepared = false;
	if (viewUsed || RESULT_STAR.test(statement.text)) {
		// A view or trigger body is compiled when used; DROP expands nothing.
		const creates =
			isWord(tokens[0], "DROP") ||
			(isWord(tokens[0], "CREATE") && tokens.slice(1, 4).some((t) => isWord(t, "VIEW", "TRIGGER")));
		for (let n = 0; n < tokens.length && !creates; n++) {
			if (!isWord(tokens[n], "SELECT")) continue;
			try {
				const columns = db.prepare(selectText(statement, n)).columns().length;
				if (columns > D1_SQLITE_LIMITS.column) return D1_RESULT_COLUMNS_MESSAGE;
			} catch {
				unprepared = true; // SQLite judges the whole statement; the caller may run it to see.
			}
		}
		// A view over 100 columns fails wherever it is expanded, inside any subquery.
		if (viewUsed && !creates && tokens.some((t) => views.includes(t.value.toLowerCase()))) {
			return D1_RESULT_COLUMNS_MESSAGE;
		}
	}
	const change = parseRowChange(tokens);
	const programs = change ? triggerPrograms(db) : null;
	if (change && programs && triggerDepth(programs, change) > D1_SQLITE_LIMITS.triggerDepth) {
		return D1_TRIGGER_DEPTH_MESSAGE;
	}
	return unprepared ? UNPREPARED : undefined;
}

const compileFailure = (
	migration: Migration,
	statement: SqlStatement,
	message: string,
): ReplayFailure => ({
	migration: migration.name,
	path: migration.path,
	line: statement.line,
	statement: statement.text,
	message,
	code: "SQLITE_ERROR",
});

/**
 * Checks each statement against the schema it meets: up front when the migration adds no trigger
 * program ("statements"), else in a pass that runs it statement by statement and is rolled back.
 */
function findCompileRefusal(
	db: Database.Database,
	migration: Migration,
	query: string,
	{ mode, views }: { mode: "pass" | "statements"; views: boolean },
): ReplayFailure | undefined {
	const statements = splitStatements(query);
	if (mode === "statements") {
		let unprepared = false;
		for (const statement of statements) {
			const found = checkCompileLimits(db, statement, { views });
			if (found === UNPREPARED) unprepared = true;
			else if (found !== undefined) return compileFailure(migration, statement, found);
		}
		if (!unprepared) return undefined;
	}
	db.exec("BEGIN");
	try {
		for (const statement of statements) {
			const found = checkCompileLimits(db, statement, { views });
			if (found !== undefined && found !== UNPREPARED) {
				return compileFailure(migration, statement, found);
			}
			db.exec(statement.text + (statement.terminated ? ";" : ""));
		}
	} catch {
		// The real run reports the failure.
	} finally {
		if (db.inTransaction) db.exec("ROLLBACK");
	}
	return undefined;
}
