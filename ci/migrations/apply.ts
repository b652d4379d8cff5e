import { D1RateLimitError, formatRetryAfter, isAmbiguous, sleep } from "../cloudflare/d1-client.ts";
import { D1ApiError } from "../errors.ts";
import type { Migration } from "./catalog.ts";
import type { SqlExecutor, StatementResult } from "./executor.ts";
import {
	clockStartSql,
	clockStopSql,
	composeRequest,
	continuitySql,
	fenceSql,
	guardSql,
	LOCK_TABLE,
	ledgerDigestSql,
	lockReleasedSql,
	PIPELINE_TABLES,
	type RunRecord,
	recordSql,
	releaseLandedSql,
	releaseLockSql,
	runRecordSql,
	schemaDigestSql,
} from "./ledger.ts";
import { quoteIdentifier, sqlString } from "./literals.ts";
import type { MigrationPlan } from "./plan.ts";
import {
	MAX_RETRY_AFTER_MS,
	parseState,
	type RemoteState,
	readAppliedNames,
	readWithRetry,
	type Sleep,
	stateSql,
} from "./remote.ts";
import { openD1LikeDatabase, replayMigrations } from "./replay.ts";
import { type GuardedTable, rowCountsAfterSql, rowCountsBeforeSql } from "./row-guard.ts";

export const MAX_WRITE_ATTEMPTS = 3;

// developers.cloudflare.com/d1/platform/limits: 100 KB per statement; workers-sdk#6347: D1 also
// refuses a request whose remaining text is over it. Past this, one /query cannot carry it.
export const MAX_REQUEST_SQL_BYTES = 100_000;

export type MigrationOutcome =
	| "applied"
	| "failed"
	| "pending"
	| "recorded"
	| "verified"
	| "unrecorded"
	/** Applied, and its file is now `.sql.retired` on purpose. */
	| "retired"
	| "not-run";

/** One line of a migrate/plan report. */
export interface MigrationRow {
	name: string;
	checksum: string | undefined;
	status: MigrationOutcome;
	durationMs?: number;
	attempts?: number;
	note?: string;
}

/** Who writes, under which lock, from which bookmark: stamped on every ledger row. */
export interface ApplyRun {
	migrationsTable: string;
	runId: string;
	ttlSeconds: number;
	owner: string;
	gitSha: string | null;
	bookmark: string;
}

export interface ApplyHooks {
	run: ApplyRun;
	/** Statements sent with the first write of the run (its "running" record): no extra request. */
	firstWrite?: string[];
	progress?: (message: string) => void;
	/** Asked before each migration: true applies no more (Ctrl-C); the one in flight finishes. */
	stopRequested?: () => boolean;
	/** Pause before the retry of attempt `attempt` (1-based). */
	retryDelayMs?: (attempt: number) => number;
	/** How every pause (rate limit, retry, read retries) is waited; tests pass one that records it. */
	sleep?: Sleep;
	/** Tables whose row counts the migration's own request must keep (the row-count guard). */
	guardFor?: (migration: Migration) => GuardedTable[];
	/** Why a migration goes through the import API (too large or too slow for one request). */
	importReason?: (migration: Migration) => string | undefined;
	/**
	 * Statements that release the lock in the last migration's own request, under their own SQL
	 * conditions (validatedReleaseSql); left out when that request would grow past what D1 takes.
	 */
	release?: string;
}

export interface ApplyFailure {
	migration: Migration;
	message: string;
	/** Whether it applied is unknown (no clear answer, and the ledger could not settle it). */
	ambiguous: boolean;
	/** Refused by the fence: this run no longer holds the lock. */
	lockLost: boolean;
	/** Refused by the row-count guard: it would have deleted rows it does not name. */
	rowsLost?: boolean;
}

export interface ApplyOutcome {
	/** One row per migration the plan touched: recorded, applied, failed or not run. */
	rows: MigrationRow[];
	applied: { name: string; durationMs: number }[];
	recorded: string[];
	failure?: ApplyFailure;
	interrupted: boolean;
	/** True once a request that may have changed the database was sent. */
	wrote: boolean;
	/** The state read in the last migration's own request, when that answer arrived. */
	stateAfter?: RemoteState;
	/** Date.now() when the last write of this run was answered. */
	lastWriteAt?: number;
	/** The last migration's own request released the lock (its conditions held): no release request. */
	released: boolean;
}

// The failure of one of our own guard tables, exactly: a row inserted into a table whose unnamed
// `CHECK (<column> IS NULL)` SQLite names by its text (build.c sqlite3AddCheckConstraint()); D1 may
// append ": SQLITE_CONSTRAINT". A migration's own CHECK, table or column of that name never matches.
const guardFailure = (column: string) =>
	new RegExp(
		`(?:^|: )CHECK constraint failed: ${column} IS NULL(?:: SQLITE_CONSTRAINT\\b.*)?$`,
		"s",
	);
// rowCountsAfterSql() inserts into ROW_GUARD_TABLE when a guarded table lost rows.
const ROWS_LOST_FAILURE = guardFailure("rows_lost");
// The lock fence (ledger.ts) inserts into FENCE_TABLE when this run no longer holds the lock.
const LOCK_LOST_FAILURE = guardFailure("lock_lost");
const isRowsLost = (error: unknown) =>
	error instanceof D1ApiError && ROWS_LOST_FAILURE.test(error.message);

/** The guarded tables' counts now (the refused request changed nothing). */
async function readCounts(
	db: SqlExecutor,
	guarded: readonly GuardedTable[],
	sleep?: Sleep,
): Promise<Map<string, number> | undefined> {
	if (guarded.length === 0) return undefined;
	const sql = guarded
		.map((g) => `SELECT count(*) AS n FROM ${quoteIdentifier(g.table)};`)
		.join("\n");
	const results = await readWithRetry(() => db.query(sql), { sleep }).catch(() => undefined);
	return new Map(
		guarded.map((g, i) => [g.table, Number(results?.[i]?.results[0]?.n ?? Number.NaN)]),
	);
}

/** The row-count guard's refusal: which tables would lose rows, through which cascade. */
export function describeRowsLost(
	migration: Migration,
	guarded: readonly GuardedTable[],
	counts: ReadonlyMap<string, number>,
): string {
	const lines = guarded.map(
		(g) =>
			`  ${g.table}: ${Number.isNaN(counts.get(g.table)) ? "?" : counts.get(g.table)} row(s) now, reached by ON DELETE CASCADE from ${g.via}`,
	);
	return `${migration.name} was not applied: it would delete rows of tables it does not name, through ON DELETE CASCADE from a table it drops or empties (D1 enforces foreign keys; PRAGMA defer_foreign_keys does not stop cascades):\n${lines.join("\n")}\nThe request was atomic: nothing was applied. Copy those rows aside and back in the same migration, or rebuild the child tables first without CASCADE.`;
}

export const isLockLost = (error: unknown) =>
	error instanceof D1ApiError && LOCK_LOST_FAILURE.test(error.message);

/** Describes a definite D1 failure of one migration, with D1's code and message. */
export function describeD1Failure(migration: Migration, error: D1ApiError): string {
	if (isLockLost(error)) {
		return `${migration.name} was not applied: this run lost the migration lock (its lease expired and another run took over, or the database was restored under it). Nothing was written by this request; check the other run's report, then rerun migrate.`;
	}
	const code = error.d1Code ? ` (D1 error ${error.d1Code})` : "";
	return `${migration.name} failed on D1${code}: ${error.message}. The request was atomic: nothing of this migration was applied.`;
}

type AttemptResult =
	| {
			ok: true;
			durationMs: number;
			attempts: number;
			note?: string;
			state?: StatementResult[];
			/** The release rode in this request and went through. */
			released?: boolean;
	  }
	| { ok: false; error: string; ambiguous: boolean; lockLost: boolean; rowsLost?: boolean };

const defaultDelay = (attempt: number) => 250 * 2 ** (attempt - 1);

/** Applies a plan: records what wrangler applied alone, then each pending migration as one request. */
export async function applyPlan(
	plan: MigrationPlan,
	db: SqlExecutor,
	hooks: ApplyHooks,
): Promise<ApplyOutcome> {
	const outcome: ApplyOutcome = {
		rows: [],
		applied: [],
		recorded: [],
		interrupted: false,
		wrote: false,
		released: false,
	};
	let firstWrite = hooks.firstWrite ?? [];
	const wrote = () => {
		outcome.wrote = true;
		outcome.lastWriteAt = Date.now();
		firstWrite = [];
	};
	if (plan.toRecord.length) {
		// Idempotent (fence + INSERT OR REPLACE), so an unclear answer is simply retried.
		const sql = [
			fenceSql(hooks.run.runId, hooks.run.ttlSeconds),
			...firstWrite,
			recordAdoptedSql(plan, hooks.run),
		].join("\n");
		await readWithRetry(() => db.query(sql, { write: true }), { sleep: hooks.sleep });
		wrote();
		for (const a of plan.toRecord) {
			outcome.recorded.push(a.name);
			outcome.rows.push({
				name: a.name,
				checksum: a.checksum,
				status: "recorded",
				note: "applied by wrangler; checksum recorded",
			});
		}
	}
	for (const [index, p] of plan.pending.entries()) {
		const rest = plan.pending.slice(index);
		if (hooks.stopRequested?.()) {
			outcome.interrupted = true;
			outcome.rows.push(...notRun(rest.map((r) => r.migration)));
			break;
		}
		hooks.progress?.(`applying ${index + 1}/${plan.pending.length}: ${p.migration.name}`);
		const last = index === plan.pending.length - 1;
		const result = await applyMigration(db, p.migration, {
			hooks,
			firstWrite,
			readState: last,
			after: outcome.applied.at(-1)?.name ?? plan.head,
		});
		wrote();
		if (result.ok) {
			outcome.applied.push({ name: p.migration.name, durationMs: result.durationMs });
			outcome.rows.push({
				name: p.migration.name,
				checksum: p.migration.checksum,
				status: "applied",
				durationMs: result.durationMs,
				attempts: result.attempts,
				...(result.note ? { note: result.note } : {}),
			});
			if (result.state) outcome.stateAfter = parseState(result.state, hooks.run.migrationsTable);
			outcome.released = result.released === true;
			continue;
		}
		outcome.failure = {
			migration: p.migration,
			message: result.error,
			ambiguous: result.ambiguous,
			lockLost: result.lockLost,
			rowsLost: result.rowsLost,
		};
		outcome.rows.push({
			name: p.migration.name,
			checksum: p.migration.checksum,
			status: "failed",
			note: result.error,
		});
		outcome.rows.push(...notRun(rest.slice(1).map((r) => r.migration)));
		break;
	}
	return outcome;
}

const notRun = (migrations: readonly Migration[]): MigrationRow[] =>
	migrations.map((m) => ({ name: m.name, checksum: m.checksum, status: "not-run" }));

function recordAdoptedSql(plan: MigrationPlan, run: ApplyRun): string {
	return plan.toRecord
		.map((a) =>
			recordSql(
				run.migrationsTable,
				{
					name: a.name,
					checksum: a.checksum ?? "",
					gitSha: run.gitSha,
					appliedBy: `wrangler (recorded by ${run.owner})`,
					durationMs: null,
					bookmark: run.bookmark,
					runId: run.runId,
					recordedBy: "adopted",
				},
				{ wrangler: false },
			),
		)
		.join("\n");
}

/** The request that applies one migration: fence, never-twice guard, SQL, ledger rows (+ state read). */
export function migrationRequest(
	migration: Migration,
	run: ApplyRun,
	{
		firstWrite = [],
		readState = false,
		guarded = [],
		after,
		release = "",
	}: {
		firstWrite?: string[];
		readState?: boolean;
		guarded?: readonly GuardedTable[];
		/** The migration the ledger must still end with (this run's last, or the plan's head). */
		after?: string;
		/** The conditional release (and what rides with it), after everything else. */
		release?: string;
	} = {},
) {
	return composeRequest([
		["fence", fenceSql(run.runId, run.ttlSeconds)],
		["continuity", after ? continuitySql(run.migrationsTable, after) : ""],
		["guard", guardSql(run.migrationsTable, migration.name)],
		["first", firstWrite.join("\n")],
		["countsBefore", rowCountsBeforeSql(guarded)],
		["clockStart", clockStartSql],
		["migration", migration.sql],
		[
			"ledger",
			recordSql(
				run.migrationsTable,
				{
					name: migration.name,
					checksum: migration.checksum,
					gitSha: run.gitSha,
					appliedBy: run.owner,
					durationMs: null,
					bookmark: run.bookmark,
					runId: run.runId,
					recordedBy: "migrate",
				},
				{ wrangler: true },
			),
		],
		["clockStop", clockStopSql(migration.name)],
		// After the clock: the guard's check ends by emptying the scratch table the clock uses.
		["countsAfter", rowCountsAfterSql(guarded)],
		["state", readState ? stateSql(run.migrationsTable) : ""],
		["release", release],
		// Who holds the lock after the release: no row of this run's means it was released.
		["held", release ? `SELECT run_id FROM ${LOCK_TABLE} WHERE id = 1;` : ""],
	]);
}

/** The request of the last migration with the release folded in, if D1 takes it as one request. */
function withRelease(
	migration: Migration,
	run: ApplyRun,
	options: NonNullable<Parameters<typeof migrationRequest>[2]>,
) {
	const plain = migrationRequest(migration, run, { ...options, release: "" });
	if (!options.release) return plain;
	const folded = migrationRequest(migration, run, options);
	return Buffer.byteLength(folded.sql, "utf8") <= MAX_REQUEST_SQL_BYTES ? folded : plain;
}

/**
 * The digests (ledgerDigestSql, schemaDigestSql) a database has after exactly `migrations`, in
 * this order, read from a replay; undefined when the replay fails.
 */
export function replayDigests(
	migrations: readonly Migration[],
	migrationsTable: string,
): { ledger: string; schema: string } | undefined {
	const db = openD1LikeDatabase();
	try {
		if (!replayMigrations(migrations, { migrationsTable, database: db }).ok) return undefined;
		const read = (sql: string) => String((db.prepare(sql).get() as { digest: unknown }).digest);
		return {
			ledger: read(ledgerDigestSql(migrationsTable)),
			schema: read(schemaDigestSql([migrationsTable, ...PIPELINE_TABLES])),
		};
	} finally {
		db.close();
	}
}

/**
 * Releases the lock, and records the run as `run` says, only when D1 then has exactly the ledger
 * and the schema (raw sqlite_master text) of the replay: a stronger test than validation, so a
 * failed validation always finds the lock still held (and a restore can be judged under it).
 */
export function validatedReleaseSql(
	digests: { ledger: string; schema: string },
	{ migrationsTable, record }: { migrationsTable: string; record: RunRecord },
): string {
	return [
		releaseLockSql(record.runId, [
			`(${ledgerDigestSql(migrationsTable)}) = ${sqlString(digests.ledger)}`,
			`(${schemaDigestSql([migrationsTable, ...PIPELINE_TABLES])}) = ${sqlString(digests.schema)}`,
		]),
		runRecordSql(record, { onlyIf: lockReleasedSql(record.runId) }),
	].join("\n");
}

/** A definite refusal of one attempt: after an unclear one it can mean that one landed. */
async function settleRefusal(
	db: SqlExecutor,
	migration: Migration,
	error: D1ApiError,
	context: {
		attempt: number;
		durationMs: number;
		lastError: string;
		guarded: readonly GuardedTable[];
		readApplied: () => Promise<Set<string>>;
		releasedOnLanding: () => Promise<boolean>;
		sleep?: Sleep;
	},
): Promise<AttemptResult> {
	const { attempt, guarded } = context;
	// After an unclear attempt, a refusal (the never-twice guard, a table that exists) can
	// mean that attempt landed after the ledger read: the ledger says which.
	if (attempt > 1) {
		const applied = await context.readApplied().catch(() => undefined);
		if (applied?.has(migration.name)) {
			return {
				ok: true,
				durationMs: context.durationMs,
				attempts: attempt,
				released: await context.releasedOnLanding(),
				note: `an earlier attempt landed late (after: ${context.lastError}); the retry was refused and the ledger confirms it applied once`,
			};
		}
	}
	const counts = isRowsLost(error) ? await readCounts(db, guarded, context.sleep) : undefined;
	return {
		ok: false,
		error: counts
			? describeRowsLost(migration, guarded, counts)
			: describeD1Failure(migration, error),
		ambiguous: false,
		lockLost: isLockLost(error),
		rowsLost: counts !== undefined,
	};
}

/** One migration as ONE request; an unclear answer is settled by a ledger read before any retry. */
async function applyMigration(
	db: SqlExecutor,
	migration: Migration,
	{
		hooks,
		firstWrite,
		readState,
		after,
	}: { hooks: ApplyHooks; firstWrite: string[]; readState: boolean; after: string | undefined },
): Promise<AttemptResult> {
	const { run, sleep: pause = sleep } = hooks;
	const guarded = hooks.guardFor?.(migration) ?? [];
	const reason = hooks.importReason?.(migration);
	const viaImport = reason && db.importSql ? (sql: string) => db.importSql?.(sql) : undefined;
	const importNote = reason ? `applied through D1's import API: ${reason}` : undefined;
	// No state read inside an import (it answers no rows): validation then reads on its own,
	// under the lock, so the release waits for it too.
	const request = withRelease(migration, run, {
		firstWrite,
		readState: readState && !viaImport,
		guarded,
		after,
		release: readState && !viaImport ? hooks.release : undefined,
	});
	const readApplied = () =>
		readWithRetry(() => readAppliedNames(db, run.migrationsTable), { sleep: hooks.sleep });
	// An attempt that landed unanswered may have released the lock: then the run holds it no more.
	const releasedOnLanding = async () =>
		request.counts.held > 0 &&
		(await readWithRetry(() => db.query(releaseLandedSql(run.runId)), { sleep: hooks.sleep })
			.then(([r]) => Number(r?.results[0]?.landed) === 1)
			.catch(() => false));
	let lastError = "";
	for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
		const t0 = performance.now();
		const elapsed = () => Math.round(performance.now() - t0);
		try {
			if (viaImport) {
				// The import runs the same SQL (fence, guards, file, ledger rows) atomically.
				await viaImport(request.sql);
				return { ok: true, durationMs: elapsed(), attempts: attempt, note: importNote };
			}
			const results = await db.query(request.sql, { write: true });
			const state = readState ? request.part(results, "state") : undefined;
			const held = request.counts.held ? request.part(results, "held")[0] : undefined;
			const released =
				held !== undefined && !held.results.some((r) => String(r.run_id) === run.runId);
			return { ok: true, durationMs: elapsed(), attempts: attempt, state, released };
		} catch (error) {
			// Refused by the rate limit before D1 ran anything: wait as told, if that is short.
			if (
				error instanceof D1RateLimitError &&
				attempt < MAX_WRITE_ATTEMPTS &&
				(error.retryAfterMs ?? 0) <= MAX_RETRY_AFTER_MS
			) {
				const wait = error.retryAfterMs ?? (hooks.retryDelayMs ?? defaultDelay)(attempt);
				hooks.progress?.(`${migration.name}: rate limited; retrying ${formatRetryAfter(wait)}`);
				await pause(wait);
				continue;
			}
			if (!isAmbiguous(error)) {
				if (!(error instanceof D1ApiError)) throw error;
				return await settleRefusal(db, migration, error, {
					attempt,
					durationMs: elapsed(),
					lastError,
					guarded,
					readApplied,
					releasedOnLanding,
					sleep: hooks.sleep,
				});
			}
			lastError = (error as Error).message;
			hooks.progress?.(
				`${migration.name}: no clear answer (${lastError}); reading the ledger before any retry`,
			);
			let applied: Set<string>;
			try {
				applied = await readApplied();
			} catch (readError) {
				return {
					ok: false,
					ambiguous: true,
					lockLost: false,
					error: `${migration.name}: the apply request got no clear answer (${lastError}) and the ledger could not be read (${(readError as Error).message}). Whether it applied is unknown; run \`workers-pipeline plan\` before anything else.`,
				};
			}
			if (applied.has(migration.name)) {
				return {
					ok: true,
					durationMs: elapsed(),
					attempts: attempt,
					released: await releasedOnLanding(),
					note: `confirmed applied by a ledger read after: ${lastError}`,
				};
			}
			// No wait after the last attempt: the ledger read just made must stay the last word
			// before the lock (whose fence refuses a late landing) is released.
			if (attempt < MAX_WRITE_ATTEMPTS) await pause((hooks.retryDelayMs ?? defaultDelay)(attempt));
		}
	}
	// The ledger read cannot rule out that the last attempt is still in flight: it can land until
	// this run releases the lock (after that, the fence refuses it). So the outcome is unknown.
	return {
		ok: false,
		ambiguous: true,
		lockLost: false,
		error: `${migration.name}: ${MAX_WRITE_ATTEMPTS} attempts got no clear answer (last: ${lastError}); the ledger did not show it after the last one, but that attempt may still have landed before this run released its lock. Run \`workers-pipeline plan\` to see whether it applied, then rerun migrate.`,
	};
}
