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
const TABLES = `SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%'
AND name NOT IN (SELECT v.name || s.suffix FROM sqlite_schema v, (SELECT '_content' AS suffix UNION ALL SELECT '_data'
UNION ALL SELECT '_idx' UNION ALL SELECT '_docsize' UNION ALL SELECT '_config' UNION ALL SELECT '_node' UNION ALL
SELECT '_parent' UNION ALL SELECT '_rowid') s WHERE v.sql LIKE 'CREATE VIRTUAL%')`;

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
	/** `name\0sql` of tables already filled; updated in place. */
	seen: Set<string>;
}

/** Rows the fill could not write are skipped: a CHECK it cannot satisfy, a parent with no rows. */
export function fillTables(db: Database.Database, options: FillOptions): number {
	const excluded = new Set(options.exclude.map((t) => t.toLowerCase()));
	const tables = (db.prepare(TABLES).all() as { name: string; sql: string }[]).filter(
		(t) => !excluded.has(t.name.toLowerCase()) && !options.seen.has(`${t.name}\0${t.sql}`),
	);
	// Parents before children, so a child row can point at a parent row.
	const pending = new Map(tables.map((t) => [t.name.toLowerCase(), t]));
	let written = 0;
	let seq = 1 + (db.prepare("SELECT count(*) FROM sqlite_schema").pluck().get() as number) * 1000;
	for (let pass = 0; pass < 3 && pending.size > 0; pass++) {
		for (const [key, table] of pending) {
			const fks = db.prepare(`PRAGMA foreign_key_list(${quote(table.name)})`).all() as ForeignKey[];
			const waiting = fks.some(
				(fk) => fk.table.toLowerCase() !== key && pending.has(fk.table.toLowerCase()) && pass < 2,
			);
			if (waiting) continue;
			pending.delete(key);
			options.seen.add(`${table.name}\0${table.sql}`);
			const have = db
				.prepare(`SELECT count(*) FROM ${quote(table.name)}`)
				.pluck()
				.get() as number;
			for (let row = have; row < options.rows; row++) {
				if (insertRow(db, table, fks, seq)) written++;
				seq += 1;
			}
		}
	}
	return written;
}

/** A key of an existing parent row (the same row for each column of a composite key); none: no parent row. */
function parentValue(db: Database.Database, fk: ForeignKey, seq: number): string | undefined {
	try {
		const parent = db
			.prepare(
				`SELECT quote(${quote(fk.to ?? "rowid")}) FROM ${quote(fk.table)} ORDER BY rowid LIMIT 1 OFFSET ?`,
			)
			.pluck();
		return (parent.get(seq % 3) ?? parent.get(0)) as string | undefined;
	} catch {
		// The parent table does not exist (SQLite allows that until a row needs it).
		return undefined;
	}
}

function insertRow(
	db: Database.Database,
	table: { name: string; sql: string },
	fks: readonly ForeignKey[],
	seq: number,
): boolean {
	const columns = (
		db.prepare(`PRAGMA table_xinfo(${quote(table.name)})`).all() as ColumnInfo[]
	).filter((c) => c.hidden === 0);
	const integerKey = columns.filter((c) => c.pk > 0).length === 1;
	const names: string[] = [];
	const values: string[] = [];
	for (const column of columns) {
		const fk = fks.find((f) => f.from === column.name);
		let value: string | undefined;
		if (fk) {
			value = parentValue(db, fk, seq);
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
