import {
	isAmbiguous,
	type SqlExecutor,
	type StatementResult,
	sleep,
} from "../cloudflare/d1-client.ts";
import { CiError, D1ApiError } from "../errors.ts";
import {
	AUDIT_TABLE,
	claimLockSql,
	type LedgerState,
	PIPELINE_TABLES,
	parseLedger,
	quoteIdentifier,
	releaseLockSql,
	setupSql,
} from "./ledger.ts";
import { makeSchema, SCHEMA_QUERY, type Schema, type SchemaRow } from "./schema.ts";

export interface RemoteState {
	ledger: LedgerState;
	/** Schema without wrangler's ledger and the pipeline's tables. */
	schema: Schema;
	tables: Set<string>;
}

const ledgerStatements = (
	migrationsTable: string,
	tables: { wrangler: boolean; audit: boolean },
) => [
	...(tables.wrangler
		? [`SELECT id, name, applied_at FROM ${quoteIdentifier(migrationsTable)} ORDER BY id;`]
		: []),
	...(tables.audit
		? [
				`SELECT name, checksum, git_sha, applied_by, duration_ms, bookmark, run_id, recorded_by, recorded_at FROM ${AUDIT_TABLE};`,
			]
		: []),
];

/** The state-reading statements, for folding into another request (e.g. the lock claim). */
export const stateSql = (migrationsTable: string) =>
	`${SCHEMA_QUERY};\n${ledgerStatements(migrationsTable, { wrangler: true, audit: true }).join("\n")}`;

/** Maps the results of stateSql (the last three results of a request). */
export function parseState(
	results: readonly StatementResult[],
	migrationsTable: string,
): RemoteState {
	const [schemaResult, wranglerResult, auditResult] = results.slice(-3);
	const rows = (schemaResult?.results ?? []) as unknown as SchemaRow[];
	return {
		ledger: parseLedger(wranglerResult?.results ?? [], auditResult?.results ?? []),
		schema: makeSchema(rows, [migrationsTable, ...PIPELINE_TABLES]),
		tables: new Set(rows.filter((r) => r.type === "table").map((r) => r.name)),
	};
}

/**
 * Reads the schema and both ledgers without writing anything, in one request (one consistent
 * snapshot). A database that has never been migrated lacks the ledger tables: then the tables
 * that exist are read in a second request, and missing ones read as empty.
 */
export async function readRemoteState(
	db: SqlExecutor,
	migrationsTable: string,
): Promise<RemoteState> {
	try {
		return parseState(await db.query(stateSql(migrationsTable)), migrationsTable);
	} catch (error) {
		if (
			!(error instanceof D1ApiError) ||
			isAmbiguous(error) ||
			!/no such table/i.test(error.message)
		)
			throw error;
	}
	const [schemaResult] = await db.query(SCHEMA_QUERY);
	const names = new Set(
		((schemaResult?.results ?? []) as unknown as SchemaRow[]).map((r) => r.name),
	);
	const present = { wrangler: names.has(migrationsTable), audit: names.has(AUDIT_TABLE) };
	const statements = ledgerStatements(migrationsTable, present);
	const empty: StatementResult = { results: [], success: true };
	// Never migrated: the schema just read is the whole state.
	const results = statements.length
		? await db.query(`${SCHEMA_QUERY};\n${statements.join("\n")}`)
		: [schemaResult ?? empty];
	// Line the results up as stateSql's (schema, wrangler's ledger, audit), missing tables empty.
	const [schema, ...ledgers] = results;
	return parseState(
		[
			schema ?? empty,
			present.wrangler ? (ledgers.shift() ?? empty) : empty,
			present.audit ? (ledgers.shift() ?? empty) : empty,
		],
		migrationsTable,
	);
}

/** Reads only wrangler's ledger names: the question asked after a request with no clear answer. */
export async function readAppliedNames(
	db: SqlExecutor,
	migrationsTable: string,
): Promise<Set<string>> {
	const [result] = await db.query(`SELECT name FROM ${quoteIdentifier(migrationsTable)};`);
	return new Set((result?.results ?? []).map((r) => String(r.name)));
}

/**
 * Retries a read until it gets a clear answer; only reads are retried like this. Gives up after
 * `attempts`, throwing the last error.
 */
export async function readWithRetry<T>(
	read: () => Promise<T>,
	{
		attempts = 6,
		baseDelayMs = 250,
		signal,
	}: { attempts?: number; baseDelayMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
	let last: unknown;
	for (let i = 0; i < attempts; i++) {
		try {
			return await read();
		} catch (error) {
			last = error;
			if (!isAmbiguous(error)) throw error;
			// No pause after the last attempt: it would only delay the failure.
			if (i < attempts - 1) await sleep(Math.min(baseDelayMs * 2 ** i, 5000), signal);
		}
	}
	throw last;
}

export interface LockHolder {
	runId: string;
	owner: string;
	acquiredAt: number;
	expiresAt: number;
	now: number;
}

export type LockOutcome =
	| { acquired: true; tookOverFrom: LockHolder | undefined; state?: RemoteState }
	| { acquired: false; holder: LockHolder | undefined };

const toHolder = (row: Record<string, unknown> | undefined): LockHolder | undefined =>
	row
		? {
				runId: String(row.run_id),
				owner: String(row.owner),
				acquiredAt: Number(row.acquired_at),
				expiresAt: Number(row.expires_at),
				now: Number(row.now),
			}
		: undefined;

/** One request: create the pipeline tables if needed, take the lock if it is free or expired. */
export async function tryClaimLock(
	db: SqlExecutor,
	{
		migrationsTable,
		runId,
		owner,
		ttlSeconds,
	}: { migrationsTable: string; runId: string; owner: string; ttlSeconds: number },
): Promise<LockOutcome> {
	// The state is read in the same request, so the caller plans on exactly what it locked.
	const sql = `${setupSql(migrationsTable)}\n${claimLockSql(runId, owner, ttlSeconds)}\n${stateSql(migrationsTable)}`;
	let results: Awaited<ReturnType<SqlExecutor["query"]>>;
	try {
		results = await db.query(sql, { write: true });
	} catch (error) {
		if (!isAmbiguous(error)) throw error;
		// No clear answer: ask who holds the lock now; if it is us, the claim went through.
		let row: StatementResult | undefined;
		try {
			[row] = await readWithRetry(() =>
				db.query(
					`SELECT run_id, owner, acquired_at, expires_at, CAST(strftime('%s', 'now') AS INTEGER) AS now FROM workers_pipeline_lock WHERE id = 1;`,
				),
			);
		} catch (readError) {
			// On a fresh database the claim that created the table did not land (yet): not held;
			// the caller claims again (a late landing of this claim then reads as ours).
			if (!/no such table/.test((readError as Error).message)) throw readError;
		}
		const holder = toHolder(row?.results[0]);
		return holder?.runId === runId
			? { acquired: true, tookOverFrom: undefined }
			: { acquired: false, holder };
	}
	const stale = toHolder(results.at(-7)?.results[0]);
	const holder = toHolder(results.at(-4)?.results[0]);
	if (holder?.runId === runId) {
		return { acquired: true, tookOverFrom: stale, state: parseState(results, migrationsTable) };
	}
	return { acquired: false, holder };
}

export class LockHeldError extends CiError {
	readonly holder: LockHolder | undefined;
	constructor(holder: LockHolder | undefined, waitedSeconds: number) {
		super(
			`the migration lock is held by ${holder ? `${holder.owner} (run ${holder.runId}, expires in ${Math.max(0, holder.expiresAt - holder.now)} s)` : "another run"}; waited ${waitedSeconds} s. Wait for it to finish, or raise --lock-timeout.`,
			"E_CHECKS_FAILED",
		);
		this.name = "LockHeldError";
		this.holder = holder;
	}
}

/** Claims the lock, polling until `timeoutMs`; throws LockHeldError naming the holder. */
export async function acquireLock(
	db: SqlExecutor,
	options: {
		migrationsTable: string;
		runId: string;
		owner: string;
		ttlSeconds: number;
		timeoutMs: number;
		pollMs?: number;
		signal?: AbortSignal;
		onWait?: (holder: LockHolder | undefined) => void;
	},
): Promise<{ tookOverFrom: LockHolder | undefined; state: RemoteState | undefined }> {
	const started = Date.now();
	for (;;) {
		const outcome = await tryClaimLock(db, options);
		if (outcome.acquired) return { tookOverFrom: outcome.tookOverFrom, state: outcome.state };
		const waited = Date.now() - started;
		if (waited >= options.timeoutMs)
			throw new LockHeldError(outcome.holder, Math.round(waited / 1000));
		options.onWait?.(outcome.holder);
		await sleep(
			Math.min(options.pollMs ?? 1000, Math.max(50, options.timeoutMs - waited)),
			options.signal,
		);
	}
}

export async function releaseLock(db: SqlExecutor, runId: string): Promise<void> {
	await readWithRetry(() => db.query(releaseLockSql(runId), { write: true }), { attempts: 4 });
}
