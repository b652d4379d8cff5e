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

/** A literal from `CHECK (col IN (x, ...))`, so the row satisfies the most common CHECK shape. */
function allowedLiteral(tableSql: string, column: string): string | undefined {
	const name = column.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
	const pattern = new RegExp(
		`["\`\\[]?${name}["\`\\]]?\\s+IN\\s*\\(\\s*('(?:[^']|'')*'|-?\\d+(?:\\.\\d+)?)`,
		"i",
	);
	return pattern.exec(tableSql)?.[1];
}

/** A value of the column's affinity (sqlite.org/datatype3.html), distinct for each `seq`. */
function valueFor(column: ColumnInfo, seq: number): string {
	const type = column.type.toUpperCase();
	if (type.includes("INT")) return String(seq);
	if (/CHAR|CLOB|TEXT/.test(type)) {
		if (DATE_LIKE_NAME.test(column.name) || /DATE|TIME/.test(type)) {
			return `'2026-01-${String((seq % 28) + 1).padStart(2, "0")} 00:00:00'`;
		}
		return `'${column.name.replace(/'/g, "''")}-${seq}'`;
	}
	if (type.includes("BLOB")) return `x'${seq.toString(16).padStart(2, "0")}'`;
	if (/REAL|FLOA|DOUB/.test(type)) return `${seq}.5`;
	if (/DATE|TIME/.test(type))
		return `'2026-01-${String((seq % 28) + 1).padStart(2, "0")} 00:00:00'`;
	if (/BOOL/.test(type)) return String(seq % 2);
	return String(seq);
}

export interface FillOptions {
	rows: number;
	/** Tables never filled (the migrations ledger). */
	exclude: readonly string[];
	/** The migration just applied: only the tables it names can be new or changed. */
	mentioned: string;
	/** Carried from call to call: `name\0sql` of tables already filled, and the next distinct value. */
	state: { seen: Set<string>; seq: number };
	/**
	 * Tables (lower case) whose rows differ in every column; "all": no duplicates anywhere. Elsewhere
	 * the second row repeats the first one's values in each column no unique key covers, as real
	 * tables hold duplicates there, so a UNIQUE index added later meets them.
	 */
	distinct?: ReadonlySet<string> | "all";
}

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
			if (have >= options.rows) continue;
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
			written += insertRows(db, plans);
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

/** One row's column list and SQL literals; undefined when a NOT NULL key has no parent row. */
function rowFor(plan: RowPlan): { names: string[]; values: string[] } | undefined {
	const { table, columns, fks, keyed } = plan;
	const integerKey = columns.filter((c) => c.pk > 0).length === 1;
	const isKey = (name: string) => keyed === undefined || keyed.has(name);
	const names: string[] = [];
	const values: string[] = [];
	for (const column of columns) {
		const fk = fks.find((f) => f.from === column.name);
		let value: string | undefined;
		if (fk) {
			// Every column of a composite foreign key points at the same parent row.
			const own = fks.filter((f) => f.id === fk.id).some((f) => isKey(f.from));
			const keys = plan.parents.get(fk) ?? [];
			value = keys[(own ? plan.seq : plan.shared) % Math.max(keys.length, 1)];
			if (value === undefined && column.notnull) return undefined;
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
			value = plan.allowed.get(column.name) ?? valueFor(column, seq);
		}
		names.push(quote(column.name));
		values.push(value ?? "NULL");
	}
	return { names, values };
}

const tryExec = (db: Database.Database, sql: string): boolean => {
	try {
		db.exec(sql);
		return true;
	} catch {
		return false;
	}
};

/** All rows in one INSERT (one prepare); if one of them is refused, each row on its own. */
function insertRows(db: Database.Database, plans: readonly RowPlan[]): number {
	const rows = plans.map(rowFor).filter((r) => r !== undefined);
	const first = rows[0];
	const table = plans[0]?.table;
	if (first === undefined || table === undefined) return 0;
	const target = quote(table.name);
	if (first.names.length === 0) {
		return rows.filter(() => tryExec(db, `INSERT INTO ${target} DEFAULT VALUES`)).length;
	}
	const head = `INSERT INTO ${target} (${first.names.join(", ")}) VALUES `;
	if (tryExec(db, head + rows.map((r) => `(${r.values.join(", ")})`).join(", ")))
		return rows.length;
	return rows.filter((r) => tryExec(db, `${head}(${r.values.join(", ")})`)).length;
}
