import Database from "better-sqlite3";
import type { Finding } from "../report/model.ts";
import type { Migration } from "./catalog.ts";
import type { SqlExecutor } from "./executor.ts";
import { quoteIdentifier } from "./literals.ts";
import { replayMigrations } from "./replay.ts";
import { SCHEMA_QUERY, type SchemaRow } from "./schema.ts";

export interface CopyBudget {
	/** Rows copied at most, over all tables. */
	rows: number;
	/** Bytes of row data (JSON size as read) copied at most. */
	bytes: number;
	/** Rows per SELECT. */
	pageSize: number;
}

export const DEFAULT_COPY_BUDGET: CopyBudget = {
	rows: 200_000,
	bytes: 64 * 1024 * 1024,
	pageSize: 1000,
};

export interface CopyReport {
	tables: { name: string; rows: number; complete: boolean }[];
	rows: number;
	bytes: number;
	requests: number;
	/** False when the budget cut a table short: the rehearsal then ran on part of the data. */
	complete: boolean;
	/** Virtual tables recreated empty because their content cannot be read back, with why. */
	notCopied: { name: string; reason: string }[];
	/** AUTOINCREMENT counters (sqlite_sequence) copied, so new rows get the ids D1 would give. */
	sequences: number;
}

// Shadow tables SQLite creates for a virtual table: recreated by its CREATE VIRTUAL TABLE, never
// copied (sqlite.org/fts5.html, sqlite.org/rtree.html "shadow tables").
const SHADOW_SUFFIXES = ["data", "idx", "content", "docsize", "config", "node", "parent", "rowid"];

const isVirtual = (row: SchemaRow) => /^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(row.sql ?? "");
const moduleOf = (row: SchemaRow) =>
	/\bUSING\s+["`[]?(\w+)/i.exec(row.sql ?? "")?.[1]?.toLowerCase();
// sqlite.org/fts5.html#contentless_tables: content='' keeps only the index, never the text.
const isContentless = (row: SchemaRow) =>
	moduleOf(row) === "fts5" && /[(,]\s*content\s*=\s*(?:''|""|``|\[\])\s*[,)]/i.test(row.sql ?? "");

const CONTENTLESS =
	"a contentless FTS5 table (content=''): D1 keeps only its index, whose text cannot be read back, so the copy's index is empty and a pending migration that reads it (MATCH, a trigger, 'rebuild') sees no rows";

/** Which tables hold data to copy, and which are shadows of a virtual table. */
export function planCopy(rows: readonly SchemaRow[]): {
	tables: SchemaRow[];
	virtual: SchemaRow[];
	shadows: Set<string>;
	/** Virtual tables recreated but not refilled: derived ones (fts5vocab), and unreadable ones with why. */
	recreateOnly: { row: SchemaRow; reason: string | undefined }[];
} {
	const all = rows.filter((r) => r.type === "table" && isVirtual(r));
	// sqlite.org/fts5.html#the_fts5vocab_virtual_table_module: read-only, derived from its FTS5 table.
	const skip = (r: SchemaRow) => moduleOf(r) === "fts5vocab" || isContentless(r);
	const virtual = all.filter((r) => !skip(r));
	const recreateOnly = all
		.filter(skip)
		.map((row) => ({ row, reason: isContentless(row) ? CONTENTLESS : undefined }));
	const shadows = new Set(
		rows
			.filter((r) => r.type === "table")
			.map((r) => r.name)
			.filter((name) => all.some((v) => SHADOW_SUFFIXES.some((s) => name === `${v.name}_${s}`))),
	);
	const tables = rows.filter((r) => r.type === "table" && !isVirtual(r) && !shadows.has(r.name));
	return { tables, virtual, shadows, recreateOnly };
}

// D1 answers BLOBs as arrays of byte values (loopback d1-database.ts toJsonValue, D1's JSON).
const toBind = (value: unknown) =>
	Array.isArray(value) ? Buffer.from(value as number[]) : (value ?? null);

/**
 * Copies the remote database into a local one with ordinary paged SELECTs (never D1's export,
 * which refuses FTS5 databases and blocks every query while it runs: workers-sdk#6305, #9519).
 * Virtual tables are recreated locally and refilled from their readable columns, so their index
 * is rebuilt here.
 */
export async function readCopy(
	db: SqlExecutor,
	budget: CopyBudget = DEFAULT_COPY_BUDGET,
	progress?: (message: string) => void,
): Promise<{ copy: Database.Database; report: CopyReport }> {
	const [schemaResult] = await db.query(`${SCHEMA_QUERY};`);
	const rows = (schemaResult?.results ?? []) as unknown as SchemaRow[];
	const { tables, virtual, shadows, recreateOnly } = planCopy(rows);
	const copy = new Database(":memory:");
	const report: CopyReport = {
		tables: [],
		rows: 0,
		bytes: 0,
		requests: 1,
		complete: true,
		notCopied: [],
		sequences: 0,
	};
	// Tables first, without foreign keys: rows arrive table by table, in any order.
	for (const t of [...tables, ...virtual]) copy.exec(`${t.sql};`);
	for (const t of [...tables, ...virtual]) {
		const withoutRowid = /\bWITHOUT\s+ROWID\b/i.test(t.sql ?? "");
		const copied = await copyTable(db, copy, { name: t.name, withoutRowid }, budget, report);
		report.tables.push(copied);
		progress?.(`rehearsal: copied ${copied.rows} row(s) of ${t.name}`);
	}
	// After their base tables: an fts5vocab table reads its FTS5 table's index.
	for (const { row, reason } of recreateOnly) {
		copy.exec(`${row.sql};`);
		if (reason) report.notCopied.push({ name: row.name, reason });
	}
	if (tables.some((t) => AUTOINCREMENT.test(t.sql ?? ""))) await copySequences(db, copy, report);
	// Indexes, views and triggers after the data, so no trigger fires during the copy.
	for (const r of rows) {
		if (r.type === "table" || shadows.has(r.tbl_name) || !r.sql) continue;
		copy.exec(`${r.sql};`);
	}
	copy.pragma("foreign_keys = ON");
	return { copy, report };
}

const AUTOINCREMENT = /\bAUTOINCREMENT\b/i;

/**
 * sqlite_sequence holds each AUTOINCREMENT table's highest id ever used, often above the largest
 * one left (deleted rows): without it the copy would hand out ids D1 never will
 * (sqlite.org/autoinc.html). D1 lets it be read (checked on workerd through Miniflare).
 */
async function copySequences(
	db: SqlExecutor,
	copy: Database.Database,
	report: CopyReport,
): Promise<void> {
	const [result] = await db.query("SELECT name, seq FROM sqlite_sequence;");
	report.requests++;
	const sequences = (result?.results ?? []) as { name: string; seq: number }[];
	const update = copy.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = ?");
	const insert = copy.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)");
	copy.transaction(() => {
		for (const { name, seq } of sequences) {
			if (update.run(seq, name).changes === 0) insert.run(name, seq);
		}
	})();
	report.sequences = sequences.length;
}

/** The rehearsal's warnings about tables the copy holds without their data. */
export function formatNotCopied(report: Pick<CopyReport, "notCopied">): Finding[] {
	return report.notCopied.map((t) => ({
		code: "REHEARSAL_NOT_COPIED",
		severity: "warning",
		message: `the rehearsal copy has ${t.name} without its rows: ${t.reason}. The rehearsal's verdict on migrations that touch ${t.name} does not count for the data; test them against a database where it is filled.`,
	}));
}

async function copyTable(
	db: SqlExecutor,
	copy: Database.Database,
	{ name, withoutRowid }: { name: string; withoutRowid: boolean },
	budget: CopyBudget,
	report: CopyReport,
): Promise<CopyReport["tables"][number]> {
	const table = quoteIdentifier(name);
	// A WITHOUT ROWID table has no rowid to page by or keep: its primary key orders it.
	const select = withoutRowid
		? `SELECT * FROM ${table}`
		: `SELECT rowid AS __rowid, * FROM ${table} ORDER BY rowid`;
	let copied = 0;
	for (let offset = 0; ; offset += budget.pageSize) {
		const left = budget.rows - report.rows;
		if (left <= 0 || report.bytes >= budget.bytes) {
			report.complete = false;
			return { name, rows: copied, complete: false };
		}
		const limit = Math.min(budget.pageSize, left);
		// rowid keeps the copy's rowids (FTS5 rowids, INTEGER PRIMARY KEY aliases) as they are.
		const [page] = await db.query(`${select} LIMIT ${limit} OFFSET ${offset};`);
		report.requests++;
		const pageRows = page?.results ?? [];
		insertRows(copy, name, pageRows);
		copied += pageRows.length;
		report.rows += pageRows.length;
		report.bytes += Buffer.byteLength(JSON.stringify(pageRows));
		if (pageRows.length < limit) return { name, rows: copied, complete: true };
	}
}

function insertRows(
	copy: Database.Database,
	name: string,
	rows: readonly Record<string, unknown>[],
): void {
	const first = rows[0];
	if (!first) return;
	const keepRowid = "__rowid" in first;
	const columns = Object.keys(first).filter((c) => c !== "__rowid");
	const names = [...(keepRowid ? ["rowid"] : []), ...columns.map(quoteIdentifier)];
	const sql = `INSERT INTO ${quoteIdentifier(name)} (${names.join(", ")}) VALUES (${names.map(() => "?").join(", ")})`;
	const insert = copy.prepare(sql);
	copy.transaction(() => {
		for (const row of rows)
			insert.run(
				...(keepRowid ? [toBind(row.__rowid)] : []),
				...columns.map((c) => toBind(row[c])),
			);
	})();
}

export interface Rehearsal {
	findings: Finding[];
	/** Measured on the local copy: what each pending migration is predicted to take on D1. */
	predictions: { name: string; predictedMs: number }[];
	copy: CopyReport;
}

/** Replays the pending migrations on the copy; each one's time there is its prediction. */
export function rehearseOnCopy(
	copy: Database.Database,
	pending: readonly Migration[],
	{ migrationsTable, environment }: { migrationsTable: string; environment: string },
): Omit<Rehearsal, "copy"> {
	const predictions: Rehearsal["predictions"] = [];
	let current: { name: string; started: number } | undefined;
	const close = () => {
		if (current)
			predictions.push({
				name: current.name,
				predictedMs: Math.round(performance.now() - current.started),
			});
	};
	const result = replayMigrations(pending, {
		database: copy,
		migrationsTable,
		onMigration: (name) => {
			close();
			current = { name, started: performance.now() };
		},
	});
	if (!result.failure) close();
	if (!result.failure) return { findings: [], predictions };
	const f = result.failure;
	return {
		predictions,
		findings: [
			{
				code: "REHEARSAL_FAILED",
				severity: "error",
				file: f.path,
				line: f.line,
				message: `on a copy of the ${environment} data, ${f.migration} fails: ${f.message}${f.code ? ` (${f.code})` : ""}. It works on an empty database, so the data is the problem (duplicates under a new UNIQUE index, NULLs under NOT NULL, …): fix the data or the migration. Production was not touched.`,
			},
		],
	};
}
