import Database from "better-sqlite3";
import { DEFAULT_MIGRATIONS_TABLE } from "../constants.ts";
import type { Migration } from "./catalog.ts";
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

/** Opens a database with D1's defaults: foreign keys enforced. */
export function openD1LikeDatabase(file = ":memory:"): Database.Database {
	const db = new Database(file);
	db.pragma("foreign_keys = ON");
	return db;
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
	const applied: ReplayResult["applied"] = [];
	const dqsFallbacks: DqsFallback[] = [];
	const dropCascades: DropCascade[] = [];
	let failure: ReplayFailure | undefined;
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
			const refused = ATTACH_WORD.test(migration.sql) ? findRefusedStatement(migration) : undefined;
			if (refused) {
				failure = refused;
				break;
			}
			if (DROP_TABLE.test(migration.sql))
				dropCascades.push(...findDropCascades(db, migration, query));
			try {
				db.exec("BEGIN");
				db.exec(query);
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

const ATTACH_WORD = /\b(attach|detach)\b/i;

/**
 * D1 refuses ATTACH/DETACH ("not authorized"); SQLite would run them, and ATTACH would even
 * create a database file next to the process. Refuse them here as D1 does, without executing.
 */
function findRefusedStatement(migration: Migration): ReplayFailure | undefined {
	for (const statement of splitStatements(migration.sql)) {
		const first = statement.tokens[0]?.text.toUpperCase();
		if (first === "ATTACH" || first === "DETACH") {
			return {
				migration: migration.name,
				path: migration.path,
				line: statement.line,
				statement: statement.text,
				message: "not authorized (D1 does not allow ATTACH or DETACH)",
				code: "SQLITE_AUTH",
			};
		}
	}
	return undefined;
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
