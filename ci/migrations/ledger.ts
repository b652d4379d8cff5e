import { CiError } from "../errors.ts";
import type { StatementResult } from "./executor.ts";
import { quoteIdentifier, sqlInteger, sqlString } from "./literals.ts";
import { ledgerTableSql } from "./replay.ts";
import { SCHEMA_QUERY } from "./schema.ts";
import { splitStatements } from "./sql.ts";

// workers-pipeline's own tables live beside wrangler's ledger, which stays the record of what is
// applied (so `wrangler d1 migrations list` keeps working). They are left out of schema checks.
export const AUDIT_TABLE = "workers_pipeline_migrations";
export const LOCK_TABLE = "workers_pipeline_lock";
export const RUNS_TABLE = "workers_pipeline_runs";
// A table whose CHECK refuses every row: inserting into it aborts the whole request.
export const FENCE_TABLE = "workers_pipeline_fence";
// The same technique for "never twice": a row here means the ledger already names the migration,
// so the request fails whether or not wrangler's table has its UNIQUE on name.
export const GUARD_TABLE = "workers_pipeline_guard";
// The row-count guard: counts taken before a migration in the same request, and a table whose
// CHECK fails the request when a guarded table ends up with fewer rows.
export const ROW_COUNTS_TABLE = "workers_pipeline_row_counts";
export const ROW_GUARD_TABLE = "workers_pipeline_row_guard";
export const PIPELINE_TABLES = [
	AUDIT_TABLE,
	LOCK_TABLE,
	RUNS_TABLE,
	FENCE_TABLE,
	GUARD_TABLE,
	ROW_COUNTS_TABLE,
	ROW_GUARD_TABLE,
] as const;

/** How a row got into the audit table. */
export type RecordedBy = "migrate" | "adopted" | "baseline";

export interface AuditEntry {
	name: string;
	checksum: string;
	gitSha: string | null;
	appliedBy: string | null;
	durationMs: number | null;
	bookmark: string | null;
	runId: string | null;
	recordedBy: RecordedBy;
	recordedAt: string | null;
}

export interface WranglerLedgerRow {
	id: number;
	name: string;
	appliedAt: string | null;
}

export interface LedgerState {
	/** wrangler's table, in apply order; empty when the table does not exist yet. */
	applied: WranglerLedgerRow[];
	audit: Map<string, AuditEntry>;
}

/** Creates every table migrate needs; idempotent, one request. */
export function setupSql(migrationsTable: string): string {
	return [
		ledgerTableSql(migrationsTable),
		`CREATE TABLE IF NOT EXISTS ${AUDIT_TABLE} (
	name TEXT PRIMARY KEY,
	checksum TEXT NOT NULL,
	git_sha TEXT,
	applied_by TEXT,
	duration_ms INTEGER,
	bookmark TEXT,
	run_id TEXT,
	recorded_by TEXT NOT NULL,
	recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);`,
		`CREATE TABLE IF NOT EXISTS ${LOCK_TABLE} (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	run_id TEXT NOT NULL,
	owner TEXT NOT NULL,
	acquired_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);`,
		`CREATE TABLE IF NOT EXISTS ${RUNS_TABLE} (
	run_id TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	environment TEXT,
	git_sha TEXT,
	bookmark TEXT,
	status TEXT NOT NULL,
	detail TEXT,
	started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	finished_at TEXT
);`,
		`CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (lock_lost INTEGER CHECK (lock_lost IS NULL));`,
		`CREATE TABLE IF NOT EXISTS ${GUARD_TABLE} (already_applied TEXT CHECK (already_applied IS NULL));`,
		`CREATE TABLE IF NOT EXISTS ${ROW_COUNTS_TABLE} (tbl TEXT PRIMARY KEY, n INTEGER NOT NULL);`,
		`CREATE TABLE IF NOT EXISTS ${ROW_GUARD_TABLE} (rows_lost TEXT CHECK (rows_lost IS NULL));`,
	].join("\n");
}

/** Maps wrangler's ledger rows and the audit rows. */
export function parseLedger(
	wranglerRows: readonly Record<string, unknown>[],
	auditRows: readonly Record<string, unknown>[],
): LedgerState {
	return {
		applied: wranglerRows.map((r) => ({
			id: Number(r.id),
			name: String(r.name),
			appliedAt: r.applied_at === null || r.applied_at === undefined ? null : String(r.applied_at),
		})),
		audit: new Map(
			auditRows.map((r) => [
				String(r.name),
				{
					name: String(r.name),
					checksum: String(r.checksum),
					gitSha: (r.git_sha as string | null) ?? null,
					appliedBy: (r.applied_by as string | null) ?? null,
					durationMs:
						r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
					bookmark: (r.bookmark as string | null) ?? null,
					runId: (r.run_id as string | null) ?? null,
					recordedBy: String(r.recorded_by) as RecordedBy,
					recordedAt: (r.recorded_at as string | null) ?? null,
				},
			]),
		),
	};
}

/**
 * Fails the whole request unless `runId` holds the lock, and extends the lease: the fence that
 * keeps a run that lost its lock (paused, partitioned) from writing after another took over.
 */
export function fenceSql(runId: string, ttlSeconds: number): string {
	return [
		`INSERT INTO ${FENCE_TABLE} (lock_lost) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM ${LOCK_TABLE} WHERE id = 1 AND run_id = ${sqlString(runId)});`,
		`UPDATE ${LOCK_TABLE} SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) + ${sqlInteger(ttlSeconds)} WHERE id = 1 AND run_id = ${sqlString(runId)};`,
	].join("\n");
}

/**
 * Fails the whole request (through the fence table) unless the ledger still names `name`, the
 * last migration this run saw applied: a database restored under the run is never built on.
 */
export const continuitySql = (migrationsTable: string, name: string) =>
	`INSERT INTO ${FENCE_TABLE} (lock_lost) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM ${quoteIdentifier(migrationsTable)} WHERE name = ${sqlString(name)});`;

/** Fails the whole request when wrangler's ledger already names `name`: never applied twice. */
export const guardSql = (migrationsTable: string, name: string) =>
	`INSERT INTO ${GUARD_TABLE} (already_applied) SELECT name FROM ${quoteIdentifier(migrationsTable)} WHERE name = ${sqlString(name)};`;

/** The ledger rows written in the same request as the migration. */
export function recordSql(
	migrationsTable: string,
	entry: Omit<AuditEntry, "recordedAt">,
	{ wrangler }: { wrangler: boolean },
): string {
	const lines: string[] = [];
	// Exactly wrangler's own statement, so its table looks as if wrangler had applied it.
	if (wrangler)
		lines.push(
			`INSERT INTO ${quoteIdentifier(migrationsTable)} (name)\nvalues (${sqlString(entry.name)});`,
		);
	lines.push(
		`INSERT OR REPLACE INTO ${AUDIT_TABLE} (name, checksum, git_sha, applied_by, duration_ms, bookmark, run_id, recorded_by) VALUES (${[
			sqlString(entry.name),
			sqlString(entry.checksum),
			sqlString(entry.gitSha),
			sqlString(entry.appliedBy),
			sqlInteger(entry.durationMs),
			sqlString(entry.bookmark),
			sqlString(entry.runId),
			sqlString(entry.recordedBy),
		].join(", ")});`,
	);
	return lines.join("\n");
}

const NOW = "CAST(strftime('%s', 'now') AS INTEGER)";
/** Who holds the lock, with the database's clock (so expiry is judged on one clock). */
export const lockHolderSql = `SELECT run_id, owner, acquired_at, expires_at, ${NOW} AS now FROM ${LOCK_TABLE} WHERE id = 1;`;

/** The lock claim as named parts: the stale holder it removes, the claim, and who holds it after. */
export function claimLockParts(
	runId: string,
	owner: string,
	ttlSeconds: number,
): { stale: string; claim: string; holder: string } {
	return {
		stale: `SELECT run_id, owner, acquired_at, expires_at, ${NOW} AS now FROM ${LOCK_TABLE} WHERE id = 1 AND expires_at < ${NOW};`,
		claim: [
			`DELETE FROM ${LOCK_TABLE} WHERE id = 1 AND expires_at < ${NOW};`,
			`INSERT OR IGNORE INTO ${LOCK_TABLE} (id, run_id, owner, acquired_at, expires_at) VALUES (1, ${sqlString(runId)}, ${sqlString(owner)}, ${NOW}, ${NOW} + ${sqlInteger(ttlSeconds)});`,
		].join("\n"),
		holder: lockHolderSql,
	};
}

/** One request built from named parts; its results are read by part name, never by position. */
export interface ComposedRequest<K extends string> {
	sql: string;
	/** How many statements (and so results) each part has. */
	counts: Record<K, number>;
	/** The results of part `name`, one per statement. */
	part(results: readonly StatementResult[], name: K): StatementResult[];
}

/** Joins named SQL parts into one request; D1 answers one result per statement, in order. */
export function composeRequest<K extends string>(
	parts: readonly (readonly [K, string])[],
): ComposedRequest<K> {
	const offsets = new Map<K, [number, number]>();
	let total = 0;
	for (const [name, sql] of parts) {
		const count = splitStatements(sql).length;
		offsets.set(name, [total, count]);
		total += count;
	}
	return {
		sql: parts.map(([, sql]) => sql).join("\n"),
		counts: Object.fromEntries([...offsets].map(([k, [, n]]) => [k, n])) as Record<K, number>,
		part(results, name) {
			if (results.length !== total) {
				throw new CiError(
					`D1 answered ${results.length} result(s) for a request of ${total} statement(s); the answer cannot be matched to the request.`,
					"E_D1_API",
				);
			}
			const [start, count] = offsets.get(name) ?? [0, 0];
			return results.slice(start, start + count);
		},
	};
}

/** Releases `runId`'s lock; with `conditions`, only when every one of them holds (SQL expressions). */
export const releaseLockSql = (runId: string, conditions: readonly string[] = []) =>
	`DELETE FROM ${LOCK_TABLE} WHERE id = 1 AND run_id = ${sqlString(runId)}${conditions.map((c) => ` AND (${c})`).join("")};`;

/** True (in SQL) while `runId` no longer holds the lock: what follows a conditional release. */
export const lockReleasedSql = (runId: string) =>
	`NOT EXISTS (SELECT 1 FROM ${LOCK_TABLE} WHERE id = 1 AND run_id = ${sqlString(runId)})`;

/**
 * 1 when `runId`'s conditional release landed (validatedReleaseSql): its lock is gone and its run
 * is recorded as succeeded, which that release alone writes while the run is under way.
 */
export const releaseLandedSql = (runId: string) =>
	`SELECT (${lockReleasedSql(runId)} AND EXISTS (SELECT 1 FROM ${RUNS_TABLE} WHERE run_id = ${sqlString(runId)} AND status = 'succeeded')) AS landed;`;

// Each field as `<length>:<text>`, concatenated: one text that names its rows unambiguously, so
// two digests are equal only when the rows are. The same SQL runs on the replay and on D1.
const digestOf = (columns: readonly string[]) =>
	columns.map((c) => `length(${c}) || ':' || ${c}`).join(" || ");

/**
 * One text for the schema objects outside `excludeTables` (sqlite_master as SCHEMA_QUERY reads
 * it, rows in type and name order): equal digests mean equal schemas, raw text and all.
 */
export const schemaDigestSql = (excludeTables: readonly string[]) =>
	`SELECT coalesce(group_concat(entry, ''), '') AS digest FROM (SELECT ${digestOf(["type", "name", "tbl_name", "sql"])} AS entry FROM (${SCHEMA_QUERY}) WHERE lower(tbl_name) NOT IN (${excludeTables.map((t) => sqlString(t.toLowerCase())).join(", ")}) ORDER BY type, name)`;

/** One text for wrangler's ledger names in apply order. */
export const ledgerDigestSql = (migrationsTable: string) =>
	`SELECT coalesce(group_concat(entry, ''), '') AS digest FROM (SELECT ${digestOf(["name"])} AS entry FROM ${quoteIdentifier(migrationsTable)} ORDER BY id)`;

export interface RunRecord {
	runId: string;
	owner: string;
	environment: string | null;
	gitSha: string | null;
	bookmark: string | null;
	status: "running" | "succeeded" | "failed" | "restored" | "nothing-to-do";
	detail: string | null;
}

/**
 * Upsert, so the final status survives a Time Travel restore that removed the first row; with
 * `onlyIf`, written only when that SQL condition holds.
 */
export function runRecordSql(run: RunRecord, { onlyIf }: { onlyIf?: string } = {}): string {
	const finished = run.status === "running" ? "NULL" : "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
	// INSERT … SELECT needs its WHERE before ON CONFLICT (sqlite.org/lang_upsert.html, parsing ambiguity).
	const values = onlyIf ? ["SELECT ", ` WHERE ${onlyIf}`] : ["VALUES (", ")"];
	return `INSERT INTO ${RUNS_TABLE} (run_id, owner, environment, git_sha, bookmark, status, detail, finished_at) ${values[0]}${[
		sqlString(run.runId),
		sqlString(run.owner),
		sqlString(run.environment),
		sqlString(run.gitSha),
		sqlString(run.bookmark),
		sqlString(run.status),
		sqlString(run.detail),
		finished,
	].join(
		", ",
	)}${values[1]} ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, detail = excluded.detail, bookmark = excluded.bookmark, finished_at = excluded.finished_at;`;
}

// A migration's duration on D1's own clock, inside its request: its start is kept in the row-count
// guard's scratch table under a key no table can have (SQLite reserves names beginning sqlite_).
const CLOCK_KEY = "'sqlite_clock'";
// SQLite's 'now' has millisecond resolution and is read anew by each statement (sqlite.org/lang_datefunc.html).
const NOW_MS = "CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";

/** Right before a migration's file: notes the time on D1's clock. */
export const clockStartSql = `INSERT OR REPLACE INTO ${ROW_COUNTS_TABLE} (tbl, n) VALUES (${CLOCK_KEY}, ${NOW_MS});`;

/** After the file and its audit row: the audit row's duration_ms is the time D1 spent on the file. */
export const clockStopSql = (name: string) =>
	[
		`UPDATE ${AUDIT_TABLE} SET duration_ms = ${NOW_MS} - (SELECT n FROM ${ROW_COUNTS_TABLE} WHERE tbl = ${CLOCK_KEY}) WHERE name = ${sqlString(name)};`,
		`DELETE FROM ${ROW_COUNTS_TABLE} WHERE tbl = ${CLOCK_KEY};`,
	].join("\n");
