import Database from "better-sqlite3";
import { DEFAULT_MIGRATIONS_TABLE } from "../constants.ts";
import type { Migration } from "./catalog.ts";
import { D1_LIKE_PATTERN_MESSAGE, D1_SQLITE_LIMITS, findD1Refusal } from "./d1-rules.ts";
import { fillTables, tablesNamedIn } from "./fill.ts";
import { quoteIdentifier, sqlString } from "./literals.ts";
import { makeSchema, SCHEMA_QUERY, type Schema, type SchemaRow } from "./schema.ts";
import { splitStatements, tokenizeSql } from "./sql.ts";

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

const ADD_COLUMN = /\balter\s+table\b[^;]*\badd\b/i;
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

/** SQLITE_LIMIT_COLUMN for ALTER TABLE ADD COLUMN, which no static check can see: the first table over it. */
export function findWideTable(
	db: Database.Database,
	tables: readonly string[],
): string | undefined {
	const count = db.prepare(COLUMN_COUNT).pluck();
	return tables.find((t) => (count.get(t) as number) > D1_SQLITE_LIMITS.column);
}

/** The failure D1 reports for the ALTER TABLE ... ADD that took `table` over 100 columns. */
function wideTableFailure(migration: Migration, table: string): ReplayFailure {
	const statements = splitStatements(migration.sql);
	const alter =
		statements.findLast(
			(s) =>
				s.tokens[0]?.text.toUpperCase() === "ALTER" &&
				s.tokens[2]?.value.toLowerCase() === table.toLowerCase() &&
				/\badd\b/i.test(s.text),
		) ?? statements[0];
	return {
		migration: migration.name,
		path: migration.path,
		line: alter?.line ?? 1,
		statement: alter?.text ?? "",
		// SQLite names the working copy of the table in this message.
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
	const filled = { seen: new Set<string>(), seq: 1 };
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
			try {
				db.exec("BEGIN");
				db.exec(query);
				const wide = findWideTable(db, tablesGainingColumns(migration.sql));
				if (wide !== undefined) {
					db.exec("ROLLBACK");
					failure = wideTableFailure(migration, wide);
					break;
				}
				db.exec("COMMIT");
			} catch (error) {
				if (db.inTransaction) db.exec("ROLLBACK");
				const fallbacks = DQS_HINT.test((error as Error).message)
					? applyWithDqsFallback(db, migration, query)
					: undefined;
				if (!fallbacks) {
					failure = locateFailure(db, migration, query, error as Error & { code?: string });
					break;
				}
				dqsFallbacks.push(...fallbacks);
			}
			// Only CREATE and ALTER make a table new or change it (a rebuild copies its rows).
			if (options.fillRows && SCHEMA_CHANGE.test(migration.sql)) {
				fillTables(db, {
					rows: options.fillRows,
					exclude: [table],
					state: filled,
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

// SQLite's hint when a double-quoted name matches no column and DQS is off (better-sqlite3's build).
const DQS_HINT =
	/^no such column: "((?:[^"]|"")+)" - should this be a string literal in single-quotes\?$/;

/**
 * D1 runs SQLite with double-quoted string literals allowed (wrangler and workerd accept them);
 * better-sqlite3 is built without. Re-run the migration statement by statement, turning each
 * unresolvable "name" SQLite points at into the string 'name' exactly as DQS would, and report
 * every such fallback (it is almost always a bug in the migration). Undefined: still failing.
 */
function applyWithDqsFallback(
	db: Database.Database,
	migration: Migration,
	query: string,
): DqsFallback[] | undefined {
	const fallbacks: DqsFallback[] = [];
	db.exec("BEGIN");
	try {
		for (const statement of splitStatements(query)) {
			let text = statement.text + (statement.terminated ? ";" : "");
			for (let attempt = 0; ; attempt++) {
				try {
					db.exec(text);
					break;
				} catch (error) {
					const match = DQS_HINT.exec((error as Error).message);
					if (!match || attempt > 50) throw error;
					const identifier = (match[1] as string).replace(/""/g, '"');
					const rewritten = quoteAsString(text, identifier);
					if (rewritten === text) throw error;
					text = rewritten;
					fallbacks.push({
						migration: migration.name,
						path: migration.path,
						line: statement.line,
						identifier,
					});
				}
			}
		}
		db.exec("COMMIT");
		return fallbacks;
	} catch {
		if (db.inTransaction) db.exec("ROLLBACK");
		return undefined;
	}
}

function quoteAsString(sql: string, identifier: string): string {
	let out = "";
	let last = 0;
	for (const token of tokenizeSql(sql)) {
		if (
			token.kind === "quoted-identifier" &&
			token.text.startsWith('"') &&
			token.value === identifier
		) {
			out += `${sql.slice(last, token.offset)}'${identifier.replace(/'/g, "''")}'`;
			last = token.offset + token.text.length;
		}
	}
	return out + sql.slice(last);
}

// Re-runs the statements one by one inside a transaction that is always rolled back, to find
// the one SQLite refuses; a failure at COMMIT (deferred foreign keys) points at the file's end.
function locateFailure(
	db: Database.Database,
	migration: Migration,
	query: string,
	error: Error & { code?: string },
): ReplayFailure {
	const base = {
		migration: migration.name,
		path: migration.path,
		message: error.message,
		code: error.code,
	};
	const statements = splitStatements(query);
	try {
		db.exec("BEGIN");
		for (const statement of statements) {
			try {
				db.exec(statement.text + (statement.terminated ? ";" : ""));
			} catch (inner) {
				const e = inner as Error & { code?: string };
				return {
					...base,
					line: statement.line,
					statement: statement.text,
					message: e.message,
					code: e.code,
				};
			}
		}
	} finally {
		if (db.inTransaction) db.exec("ROLLBACK");
	}
	const lastLine = migration.sql.trimEnd().split("\n").length;
	return { ...base, line: lastLine, statement: "(at commit)" };
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
