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
	table: string;
	from: string;
	to: string | null;
}

const FILL_ID_BASE = 1_000_000_000;
// Text columns that hold a point in time (`expires_at`, `createdOn`, `birth_date`): a date string,
// so a later migration converting them (strftime, unixepoch) sees what production holds.
const DATE_LIKE_NAME = /(?:_at|At|_on|date|time|timestamp)$|^(?:date|time)|_date_|_time_/i;

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

// Tables the fill leaves alone: SQLite's, D1's, virtual tables and their shadow tables.
const TABLES = "SELECT name, sql FROM sqlite_schema WHERE type = 'table'";
const SHADOW_SUFFIXES = [
	"_content",
	"_data",
	"_idx",
	"_docsize",
	"_config",
	"_node",
	"_parent",
	"_rowid",
];

function fillableTables(db: Database.Database): { name: string; sql: string }[] {
	const all = db.prepare(TABLES).all() as { name: string; sql: string }[];
	const virtual = all
		.filter((t) => /^CREATE\s+VIRTUAL/i.test(t.sql))
		.map((t) => t.name.toLowerCase());
	return all.filter((t) => {
		const name = t.name.toLowerCase();
		if (name.startsWith("sqlite_") || name.startsWith("_cf_")) return false;
		if (/^CREATE\s+VIRTUAL/i.test(t.sql)) return false;
		return !virtual.some((v) => SHADOW_SUFFIXES.some((suffix) => name === v + suffix));
	});
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
	/** Carried from call to call: `name\0sql` of tables already filled, and the next distinct value. */
	state: { seen: Set<string>; seq: number };
}

/** Rows the fill could not write are skipped: a CHECK it cannot satisfy, a parent with no rows. */
export function fillTables(db: Database.Database, options: FillOptions): number {
	const { state } = options;
	const excluded = new Set(options.exclude.map((t) => t.toLowerCase()));
	const tables = fillableTables(db).filter(
		(t) => !excluded.has(t.name.toLowerCase()) && !state.seen.has(`${t.name}\0${t.sql}`),
	);
	if (tables.length === 0) return 0;
	// Parents before children, so a child row can point at a parent row.
	const pending = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
	const keys = new Map(
		tables.map((t) => [
			t.name.toLowerCase(),
			db.prepare(`PRAGMA foreign_key_list(${quote(t.name)})`).all() as ForeignKey[],
		]),
	);
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
			const columns = (
				db.prepare(`PRAGMA table_xinfo(${quote(table.name)})`).all() as ColumnInfo[]
			).filter((c) => c.hidden === 0);
			const parents = new Map(fks.map((fk) => [fk, parentValues(db, fk)]));
			for (let row = have; row < options.rows; row++) {
				if (insertRow(db, { table, columns, fks, parents, seq: state.seq++ })) written++;
			}
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
	seq: number;
}

function insertRow(db: Database.Database, plan: RowPlan): boolean {
	const { table, columns, fks, seq } = plan;
	const integerKey = columns.filter((c) => c.pk > 0).length === 1;
	const names: string[] = [];
	const values: string[] = [];
	for (const column of columns) {
		const fk = fks.find((f) => f.from === column.name);
		let value: string | undefined;
		if (fk) {
			const values = plan.parents.get(fk) ?? [];
			value = values[seq % Math.max(values.length, 1)];
			if (value === undefined && column.notnull) return false;
		} else if (column.pk > 0 && integerKey && /INT/i.test(column.type)) {
			// Far from the small ids a later migration's seed rows use, so they never collide.
			value = String(FILL_ID_BASE + seq);
		} else if (column.dflt_value !== null && !column.pk && !/\bUNIQUE\b/i.test(table.sql)) {
			continue;
		} else {
			value = allowedLiteral(table.sql, column.name) ?? valueFor(column, seq);
		}
		names.push(quote(column.name));
		values.push(value ?? "NULL");
	}
	const sql = names.length
		? `INSERT INTO ${quote(table.name)} (${names.join(", ")}) VALUES (${values.join(", ")})`
		: `INSERT INTO ${quote(table.name)} DEFAULT VALUES`;
	try {
		db.exec(sql);
		return true;
	} catch {
		return false;
	}
}
