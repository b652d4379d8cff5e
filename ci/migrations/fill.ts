// The data-carrying replay's rows: after each migration every new or changed table gets a few
// valid rows, so later migrations meet a populated database as production does.
import type Database from "better-sqlite3";

interface ColumnInfo {
	name: string;
	type: string;
	notnull: number;
	dflt_value: string | null;
	pk: number;
	hidden: number;
}

interface ForeignKey {
	id: number;
	table: string;
	from: string;
	to: string | null;
}

const FILL_ID_BASE = 1_000_000_000;
// Text columns that hold a point in time (`expires_at`, `createdOn`, `birth_date`): a date string,
// so a later migration converting them (strftime, unixepoch) sees what production holds.
const DATE_LIKE_NAME = /(?:_at|At|_on|date|time|timestamp)$|^(?:date|time)|_date_|_time_/i;

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

const TABLE_BY_NAME =
	"SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE AND upper(substr(sql, 1, 14)) <> 'CREATE VIRTUAL'";
const NAME_AFTER = (words: string) =>
	new RegExp(
		`\\b(?:${words})\\s+(?:if\\s+(?:not\\s+)?exists\\s+)?(?:[\\w$]+\\s*\\.\\s*)?("(?:[^"]|"")+"|\`[^\`]+\`|\\[[^\\]]+\\]|[\\w$]+)`,
		"gi",
	);
// Names after TABLE (CREATE/ALTER TABLE) and RENAME TO: the tables a migration creates or changes.
const NAMED_TABLE = NAME_AFTER("table|to");
// Names a statement reads or writes (CREATE INDEX ... ON t, INSERT INTO t SELECT ... FROM u).
const USED_TABLE = NAME_AFTER("table|to|on|from|into|join|update");

// The fill asks the same few questions after every migration: prepare each once per database
// (pragma_* table-valued functions take the table as a parameter, so one statement serves all).
const statements = new WeakMap<Database.Database, Map<string, Database.Statement>>();
const prepared = (db: Database.Database, sql: string): Database.Statement => {
	const cache = statements.get(db) ?? new Map<string, Database.Statement>();
	statements.set(db, cache);
	const statement = cache.get(sql) ?? db.prepare(sql);
	cache.set(sql, statement);
	return statement;
};
const FOREIGN_KEYS = 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?)';
const COLUMNS = `SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)`;

// Rows as arrays, named here: better-sqlite3 compiles a new row constructor for a statement each
// time it is re-prepared (row-builder.cpp GetRowJS), and these are after nearly every migration.
const rawRows = (statement: Database.Statement, ...params: unknown[]): unknown[][] =>
	statement.raw(true).all(...params) as unknown[][];
const foreignKeysOf = (db: Database.Database, table: string): ForeignKey[] =>
	rawRows(prepared(db, FOREIGN_KEYS), table).map(([id, parent, from, to]) => ({
		id: id as number,
		table: parent as string,
		from: from as string,
		to: to as string | null,
	}));
const columnsOf = (db: Database.Database, table: string): ColumnInfo[] =>
	rawRows(prepared(db, COLUMNS), table).map(([name, type, notnull, dflt, pk, hidden]) => ({
		name: name as string,
		type: type as string,
		notnull: notnull as number,
		dflt_value: dflt as string | null,
		pk: pk as number,
		hidden: hidden as number,
	}));

const unquote = (name: string) =>
	/^["`[]/.test(name) ? name.slice(1, -1).replace(/""/g, '"') : name;

/** The tables (lower case) a failing statement names: those whose rows it met. */
export const tablesNamedIn = (sql: string): string[] => [
	...new Set([...sql.matchAll(USED_TABLE)].map((m) => unquote(m[1] ?? "").toLowerCase())),
];

/**
 * The tables a migration can have created or changed, found from the names its text gives after
 * TABLE and RENAME TO (a rebuild names both the copy and the final name); never virtual tables,
 * their shadow tables (not named), SQLite's or D1's own.
 */
function fillableTables(db: Database.Database, mentioned: string): { name: string; sql: string }[] {
	const names = new Set(
		[...mentioned.matchAll(NAMED_TABLE)].map((m) => unquote(m[1] ?? "").toLowerCase()),
	);
	if (names.size === 0) return [];
	const byName = prepared(db, TABLE_BY_NAME).raw(true);
	const found: { name: string; sql: string }[] = [];
	for (const name of names) {
		if (name.startsWith("sqlite_") || name.startsWith("_cf_")) continue;
		const table = byName.get(name) as [string, string] | undefined;
		if (table) found.push({ name: table[0], sql: table[1] });
	}
	return found;
}

/**
 * A literal from `CHECK (col IN (x, ...))` or `CHECK (col BETWEEN low AND high)` (its low end),
 * so the row satisfies the most common CHECK shapes (a rating from 1 to 5).
 */
function allowedLiteral(tableSql: string, column: string): string | undefined {
	const name = column.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
	const pattern = new RegExp(
		`["\`\\[]?${name}["\`\\]]?\\s+(?:IN\\s*\\(\\s*('(?:[^']|'')*'|-?\\d+(?:\\.\\d+)?)|BETWEEN\\s+(-?\\d+(?:\\.\\d+)?)\\s+AND\\b)`,
		"i",
	);
	const match = pattern.exec(tableSql);
	return match?.[1] ?? match?.[2];
}

/**
 * How a row's values are written. `plain` first; when a CHECK refuses the row, the others, each
 * meeting a common CHECK shape the plain values miss: `LIKE '%@%'` (all three), `x = upper(x)`,
 * `x = lower(x)`, `json_valid(x)`, and a column that must exceed an earlier one (`start < end`:
 * the retry styles make values grow with the column's position).
 */
export type ValueStyle = "plain" | "upper" | "lower" | "json";
const RETRY_STYLES: readonly ValueStyle[] = ["upper", "lower", "json"];

const dateValue = (seq: number, hour: number) =>
	`'2026-01-${String((seq % 28) + 1).padStart(2, "0")} ${String(hour).padStart(2, "0")}:00:00'`;

/** Text for the column: distinct for each `seq`, in the style asked (growing with `ordinal`). */
function textValue(column: ColumnInfo, seq: number, style: ValueStyle, ordinal: number): string {
	const name = column.name.replace(/'/g, "''");
	const position = String(ordinal).padStart(3, "0");
	if (style === "upper") return `'${position}-${name.toUpperCase()}-${seq}@EXAMPLE.COM'`;
	if (style === "lower") return `'${position}-${name.toLowerCase()}-${seq}@example.com'`;
	if (style === "json") return `'{"${name.replace(/["\\]/g, "")}":${seq}}'`;
	return `'${name}-${seq}'`;
}

/**
 * A value of the column's affinity (sqlite.org/datatype3.html), distinct for each `seq`; `ordinal`
 * (the column's position) makes the retry styles' numbers and dates grow from column to column.
 */
function valueFor(
	column: ColumnInfo,
	seq: number,
	style: ValueStyle = "plain",
	ordinal = 0,
): string {
	const type = column.type.toUpperCase();
	const number = style === "plain" ? seq : seq * 1000 + ordinal;
	const hour = style === "plain" ? 0 : Math.min(ordinal, 23);
	if (type.includes("INT")) return String(number);
	if (/CHAR|CLOB|TEXT/.test(type)) {
		if (DATE_LIKE_NAME.test(column.name) || /DATE|TIME/.test(type)) return dateValue(seq, hour);
		return textValue(column, seq, style, ordinal);
	}
	if (type.includes("BLOB")) return `x'${seq.toString(16).padStart(2, "0")}'`;
	if (/REAL|FLOA|DOUB/.test(type)) return `${number}.5`;
	if (/DATE|TIME/.test(type)) return dateValue(seq, hour);
	if (/BOOL/.test(type)) return String(seq % 2);
	// No declared type (`email NOT NULL CHECK (email LIKE '%@%')`): a number, else text.
	return style === "plain" ? String(seq) : textValue(column, seq, style, ordinal);
}

export interface FillOptions {
	rows: number;
	/** Tables never filled (the migrations ledger). */
	exclude: readonly string[];
	/** The migration just applied: only the tables it names can be new or changed. */
	mentioned: string;
	/**
	 * Carried from call to call: `name\0sql` of tables already filled, the next distinct value,
	 * and the tables that got no row (lower case → name, why, the migration that made them).
	 */
	state: FillState;
	/** The migration just applied (its path), for `state.empty`. */
	origin?: string;
	/**
	 * Tables (lower case) whose rows differ in every column; "all": no duplicates anywhere. Elsewhere
	 * the second row repeats the first one's values in each column no unique key covers, as real
	 * tables hold duplicates there, so a UNIQUE index added later meets them.
	 */
	distinct?: ReadonlySet<string> | "all";
}

export interface FillState {
	seen: Set<string>;
	seq: number;
	empty: Map<string, EmptyTable>;
}

/** A table the fill could write no row into, so later migrations met it empty. */
export interface EmptyTable {
	table: string;
	/** SQLite's refusal of the last try, or the parent with no row to point at. */
	reason: string;
	/** The migration after which it stayed empty. */
	path: string | undefined;
}

export const newFillState = (): FillState => ({ seen: new Set(), seq: 1, empty: new Map() });

// Every column of a PRIMARY KEY, UNIQUE constraint or unique index (partial ones included); an
// index on an expression (cid -2) makes every column count, as the fill cannot tell which it covers.
const UNIQUE_KEY_COLUMNS =
	'SELECT ii.cid AS cid, ii.name AS name FROM pragma_index_list(?) il, pragma_index_info(il.name) ii WHERE il."unique" = 1';

// Prepared once per connection: the fill runs after every migration that changes a table.
const keyColumnQueries = new WeakMap<Database.Database, Database.Statement>();
function keyColumnsQuery(db: Database.Database): Database.Statement {
	let statement = keyColumnQueries.get(db);
	if (statement === undefined) {
		statement = db.prepare(UNIQUE_KEY_COLUMNS);
		keyColumnQueries.set(db, statement);
	}
	return statement;
}

/** Names of the columns some unique key covers; undefined when that cannot be told (all count). */
function uniqueKeyColumns(
	statement: Database.Statement,
	table: string,
	columns: readonly ColumnInfo[],
): ReadonlySet<string> | undefined {
	const keyed = new Set(columns.filter((c) => c.pk > 0).map((c) => c.name));
	for (const [cid, name] of rawRows(statement, table) as [number, string | null][]) {
		if (cid < 0 || name === null) return undefined;
		keyed.add(name);
	}
	return keyed;
}

/** Rows the fill could not write are skipped: a CHECK it cannot satisfy, a parent with no rows. */
export function fillTables(db: Database.Database, options: FillOptions): number {
	const { state } = options;
	const excluded = new Set(options.exclude.map((t) => t.toLowerCase()));
	const tables = fillableTables(db, options.mentioned).filter(
		(t) => !excluded.has(t.name.toLowerCase()) && !state.seen.has(`${t.name}\0${t.sql}`),
	);
	if (tables.length === 0) return 0;
	// Parents before children, so a child row can point at a parent row.
	const pending = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
	const keys = new Map(tables.map((t) => [t.name.toLowerCase(), foreignKeysOf(db, t.name)]));
	const keyColumns = keyColumnsQuery(db);
	let written = 0;
	for (let pass = 0; pass < 3 && pending.size > 0; pass++) {
		for (const [key, table] of pending) {
			const fks = keys.get(key) ?? [];
			const waiting = fks.some(
				(fk) => fk.table.toLowerCase() !== key && pending.has(fk.table.toLowerCase()) && pass < 2,
			);
			if (waiting) continue;
			pending.delete(key);
			state.seen.add(`${table.name}\0${table.sql}`);
			const have = db
				.prepare(`SELECT count(*) FROM ${quote(table.name)}`)
				.pluck()
				.get() as number;
			if (have >= options.rows) {
				state.empty.delete(key);
				continue;
			}
			const columns = columnsOf(db, table.name).filter((c) => c.hidden === 0);
			const parents = new Map(fks.map((fk) => [fk, parentValues(db, fk)]));
			const distinct = options.distinct === "all" || options.distinct?.has(key) === true;
			const keyed = uniqueKeyColumns(keyColumns, table.name, columns);
			const duplicate = !distinct && keyed !== undefined;
			const first = state.seq;
			const allowed = new Map<string, string | undefined>();
			const plans = Array.from({ length: options.rows - have }, (_, n) => ({
				table,
				columns,
				fks,
				parents,
				keyed,
				allowed,
				seq: state.seq++,
				// The second row shares the first one's values outside the unique keys.
				shared: duplicate && n === 1 ? first : first + n,
			}));
			const inserted = insertRows(db, plans);
			written += inserted.written;
			if (have + inserted.written > 0) state.empty.delete(key);
			else
				state.empty.set(key, {
					table: table.name,
					reason: inserted.error ?? "no row could be written",
					path: options.origin,
				});
		}
	}
	return written;
}

/** Keys of up to 3 existing parent rows, in rowid order (the same row for each column of a composite key). */
function parentValues(db: Database.Database, fk: ForeignKey): string[] {
	try {
		return db
			.prepare(
				`SELECT quote(${quote(fk.to ?? "rowid")}) FROM ${quote(fk.table)} ORDER BY rowid LIMIT 3`,
			)
			.pluck()
			.all() as string[];
	} catch {
		// The parent table does not exist (SQLite allows that until a row needs it).
		return [];
	}
}

interface RowPlan {
	table: { name: string; sql: string };
	columns: readonly ColumnInfo[];
	fks: readonly ForeignKey[];
	parents: ReadonlyMap<ForeignKey, readonly string[]>;
	/** Columns a unique key covers; undefined when that cannot be told (then all do). */
	keyed: ReadonlySet<string> | undefined;
	/** allowedLiteral per column, shared by the table's rows (each call compiles a RegExp). */
	allowed: Map<string, string | undefined>;
	/** Distinct for each row. */
	seq: number;
	/** For the columns outside every unique key: another row's `seq` when this row duplicates it. */
	shared: number;
}

/** One row's column list and SQL literals; the parent's name when a NOT NULL key has no row to point at. */
function rowFor(
	plan: RowPlan,
	style: ValueStyle = "plain",
): { names: string[]; values: string[] } | { missingParent: string } {
	const { table, columns, fks, keyed } = plan;
	const integerKey = columns.filter((c) => c.pk > 0).length === 1;
	const isKey = (name: string) => keyed === undefined || keyed.has(name);
	const names: string[] = [];
	const values: string[] = [];
	for (const [ordinal, column] of columns.entries()) {
		const fk = fks.find((f) => f.from === column.name);
		let value: string | undefined;
		if (fk) {
			// Every column of a composite foreign key points at the same parent row.
			const own = fks.filter((f) => f.id === fk.id).some((f) => isKey(f.from));
			const keys = plan.parents.get(fk) ?? [];
			value = keys[(own ? plan.seq : plan.shared) % Math.max(keys.length, 1)];
			if (value === undefined && column.notnull) return { missingParent: fk.table };
		} else if (column.pk > 0 && integerKey && /INT/i.test(column.type)) {
			// Far from the small ids a later migration's seed rows use, so they never collide.
			value = String(FILL_ID_BASE + plan.seq);
		} else if (column.dflt_value !== null && !column.pk && !isKey(column.name)) {
			continue;
		} else {
			const seq = isKey(column.name) ? plan.seq : plan.shared;
			if (!plan.allowed.has(column.name)) {
				plan.allowed.set(column.name, allowedLiteral(table.sql, column.name));
			}
			value = plan.allowed.get(column.name) ?? valueFor(column, seq, style, ordinal);
		}
		names.push(quote(column.name));
		values.push(value ?? "NULL");
	}
	return { names, values };
}

/** True, or SQLite's message when it refuses the statement. */
const tryExec = (db: Database.Database, sql: string): true | string => {
	try {
		db.exec(sql);
		return true;
	} catch (error) {
		return error instanceof Error ? error.message : String(error);
	}
};

const CHECK_FAILED = /^CHECK constraint failed/;

/**
 * All rows in one INSERT (one prepare); if one of them is refused, each row on its own, in the
 * retry styles while a CHECK is what refuses it. The count written, and the last refusal.
 */
function insertRows(
	db: Database.Database,
	plans: readonly RowPlan[],
): { written: number; error?: string } {
	const table = plans[0]?.table;
	if (table === undefined) return { written: 0 };
	const target = quote(table.name);
	const first = rowFor(plans[0] as RowPlan);
	if ("missingParent" in first) {
		return { written: 0, error: `its parent table ${first.missingParent} has no row to point at` };
	}
	if (first.names.length === 0) {
		const results = plans.map(() => tryExec(db, `INSERT INTO ${target} DEFAULT VALUES`));
		const refused = results.find((r) => r !== true);
		return {
			written: results.filter((r) => r === true).length,
			...(typeof refused === "string" ? { error: refused } : {}),
		};
	}
	const head = (names: readonly string[]) => `INSERT INTO ${target} (${names.join(", ")}) VALUES `;
	const rows = plans.map((plan) => rowFor(plan));
	const ready = rows.filter((r) => !("missingParent" in r)) as {
		names: string[];
		values: string[];
	}[];
	if (
		ready.length === plans.length &&
		tryExec(db, head(first.names) + ready.map((r) => `(${r.values.join(", ")})`).join(", ")) ===
			true
	)
		return { written: plans.length };
	let written = 0;
	let error: string | undefined;
	for (const plan of plans) {
		for (const style of ["plain", ...RETRY_STYLES] as const) {
			const row = rowFor(plan, style);
			if ("missingParent" in row) {
				error = `its parent table ${row.missingParent} has no row to point at`;
				break;
			}
			const result = tryExec(db, `${head(row.names)}(${row.values.join(", ")})`);
			if (result === true) {
				written++;
				break;
			}
			error = result;
			if (!CHECK_FAILED.test(result)) break;
		}
	}
	return { written, ...(error !== undefined ? { error } : {}) };
}
