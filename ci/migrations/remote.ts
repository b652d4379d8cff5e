import {
	D1RateLimitError,
	isAmbiguous,
	isRetryable,
	type SqlExecutor,
	type StatementResult,
	sleep,
} from "../cloudflare/d1-client.ts";
import { CiError, D1ApiError } from "../errors.ts";
import {
	AUDIT_TABLE,
	claimLockParts,
	composeRequest,
	type LedgerState,
	LOCK_TABLE,
	lockHolderSql,
	PIPELINE_TABLES,
	parseLedger,
	releaseLockSql,
	setupSql,
} from "./ledger.ts";
import { quoteIdentifier } from "./literals.ts";
import { makeSchema, SCHEMA_QUERY, type Schema, type SchemaRow } from "./schema.ts";
import { splitStatements } from "./sql.ts";

const NOT_EMPTY_MARK = "workers_pipeline: the database is not empty";

export interface RemoteState {
	ledger: LedgerState;
	/** Schema without wrangler's ledger and the pipeline's tables. */
	schema: Schema;
	tables: Set<string>;
	/** False when wrangler's ledger exists without a UNIQUE name (not the table wrangler creates). */
	ledgerUnique: boolean;
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

/** The state-reading statements (schema, wrangler's ledger, audit), for folding into another request. */
export const stateSql = (migrationsTable: string) =>
	`${SCHEMA_QUERY};\n${ledgerStatements(migrationsTable, { wrangler: true, audit: true }).join("\n")}`;

/** True when wrangler's ledger refuses a second row with the same name (the shape wrangler creates). */
export function ledgerHasUniqueName(rows: readonly SchemaRow[], migrationsTable: string): boolean {
	const table = migrationsTable.toLowerCase();
	const own = rows.find((r) => r.type === "table" && r.name.toLowerCase() === table);
	if (!own?.sql) return false;
	const compact = own.sql.replace(/\s+/g, " ");
	if (/["`[]?\bname\b["`\]]? [^,]*\bUNIQUE\b/i.test(compact)) return true;
	if (/\bUNIQUE ?\( ?["`[]?name["`\]]? ?\)/i.test(compact)) return true;
	return rows.some(
		(r) =>
			r.type === "index" &&
			r.tbl_name.toLowerCase() === table &&
			/^CREATE UNIQUE INDEX .*\( ?["`[]?name["`\]]? ?\)$/i.test(
				(r.sql ?? "").replace(/\s+/g, " ").trim(),
			),
	);
}

/** Maps the three results of stateSql: schema, wrangler's ledger, audit rows. */
export function parseState(
	results: readonly StatementResult[],
	migrationsTable: string,
): RemoteState {
	const [schemaResult, wranglerResult, auditResult] = results;
	const rows = (schemaResult?.results ?? []) as unknown as SchemaRow[];
	const tables = new Set(rows.filter((r) => r.type === "table").map((r) => r.name));
	return {
		ledger: parseLedger(wranglerResult?.results ?? [], auditResult?.results ?? []),
		schema: makeSchema(rows, [migrationsTable, ...PIPELINE_TABLES]),
		tables,
		ledgerUnique: !tables.has(migrationsTable) || ledgerHasUniqueName(rows, migrationsTable),
	};
}

/** A definite "no such table" answer: the read met a database whose ledger tables are missing. */
const missingTable = (error: unknown): string | undefined => {
	if (!(error instanceof D1ApiError) || isAmbiguous(error)) return undefined;
	return /no such table: ?([^\s:]+)/i.exec(error.message)?.[1] ?? undefined;
};

/**
 * The state read as one request (one consistent snapshot), or `{ missing }` naming the table
 * D1 said is missing (a database never migrated) — then nothing was read.
 */
export async function readStateIfMigrated(
	db: SqlExecutor,
	migrationsTable: string,
): Promise<RemoteState | { missing: string }> {
	try {
		const request = composeRequest([["state", stateSql(migrationsTable)]]);
		return parseState(request.part(await db.query(request.sql), "state"), migrationsTable);
	} catch (error) {
		const missing = missingTable(error);
		if (missing === undefined) throw error;
		return { missing };
	}
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
	const state = await readStateIfMigrated(db, migrationsTable);
	return "missing" in state ? readPresentTables(db, migrationsTable) : state;
}

/** The state of a database missing a ledger table: the schema, then the ledgers that exist. */
async function readPresentTables(db: SqlExecutor, migrationsTable: string): Promise<RemoteState> {
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

/** The state of a database with no schema object at all (what emptyDatabaseSql proves). */
export const emptyState = (migrationsTable: string): RemoteState => parseState([], migrationsTable);

/**
 * Fails the whole request unless the database has no schema object at all (tables, indexes,
 * views, triggers; D1's own `_cf_` tables aside). It needs no table, so it can open a request
 * on a never-migrated database: SQLite's json() refuses the text ("malformed JSON").
 */
export const emptyDatabaseSql = `SELECT json(CASE WHEN EXISTS (${SCHEMA_QUERY}) THEN '${NOT_EMPTY_MARK}' ELSE 'null' END) AS empty;`;

/** The claim's emptiness proof failed: the database has objects; nothing was written. */
export class DatabaseNotEmptyError extends CiError {
	constructor(cause: unknown) {
		super("the database is not empty: its state must be read before the lock", "E_D1_API", {
			cause,
		});
		this.name = "DatabaseNotEmptyError";
	}
}

/** Reads only wrangler's ledger names: the question asked after a request with no clear answer. */
export async function readAppliedNames(
	db: SqlExecutor,
	migrationsTable: string,
): Promise<Set<string>> {
	const [result] = await db.query(`SELECT name FROM ${quoteIdentifier(migrationsTable)};`);
	return new Set((result?.results ?? []).map((r) => String(r.name)));
}

/** Waits `ms`, rejecting when `signal` aborts: the pause of every retry and of the lock wait. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A Retry-After longer than this is not waited out: the run stops and says when to retry. */
export const MAX_RETRY_AFTER_MS = 30_000;

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
		sleep: pause = sleep,
	}: {
		attempts?: number;
		baseDelayMs?: number;
		signal?: AbortSignal;
		/** The pause between attempts (tests pass one that records it). */
		sleep?: Sleep;
	} = {},
): Promise<T> {
	let last: unknown;
	for (let i = 0; i < attempts; i++) {
		try {
			return await read();
		} catch (error) {
			last = error;
			if (!isRetryable(error)) throw error;
			// A rate limit says when to come back: wait that long if it is short, else give up now.
			const retryAfter = error instanceof D1RateLimitError ? error.retryAfterMs : undefined;
			if ((retryAfter ?? 0) > MAX_RETRY_AFTER_MS) throw error;
			// No pause after the last attempt: it would only delay the failure.
			if (i < attempts - 1)
				await pause(Math.max(retryAfter ?? 0, Math.min(baseDelayMs * 2 ** i, 5000)), signal);
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
		requireEmpty = false,
		sleep,
	}: {
		migrationsTable: string;
		runId: string;
		owner: string;
		ttlSeconds: number;
		/** Claim only if the database has no schema object (else DatabaseNotEmptyError). */
		requireEmpty?: boolean;
		/** The pause between reads of the holder after a lost answer. */
		sleep?: Sleep;
	},
): Promise<LockOutcome> {
	const lock = claimLockParts(runId, owner, ttlSeconds);
	// The state is read in the same request, so the caller plans on exactly what it locked.
	const request = composeRequest([
		["empty", requireEmpty ? emptyDatabaseSql : ""],
		["setup", setupSql(migrationsTable)],
		["stale", lock.stale],
		["claim", lock.claim],
		["holder", lock.holder],
		["state", stateSql(migrationsTable)],
	]);
	let results: StatementResult[];
	try {
		results = await db.query(request.sql, { write: true });
	} catch (error) {
		if (
			requireEmpty &&
			error instanceof D1ApiError &&
			!isAmbiguous(error) &&
			/malformed JSON/i.test(error.message)
		)
			throw new DatabaseNotEmptyError(error);
		if (!isAmbiguous(error)) throw error;
		// No clear answer: ask who holds the lock now; if it is us, the claim went through.
		let row: StatementResult | undefined;
		try {
			[row] = await readWithRetry(() => db.query(lockHolderSql), { sleep });
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
	const stale = toHolder(request.part(results, "stale")[0]?.results[0]);
	const holder = toHolder(request.part(results, "holder")[0]?.results[0]);
	if (holder?.runId === runId) {
		return {
			acquired: true,
			tookOverFrom: stale,
			state: parseState(request.part(results, "state"), migrationsTable),
		};
	}
	return { acquired: false, holder };
}

export class LockHeldError extends CiError {
	readonly holder: LockHolder | undefined;
	constructor(holder: LockHolder | undefined, waitedSeconds: number) {
		super(
			`the migration lock is held by ${holder ? `${holder.owner} (run ${holder.runId}, expires in ${Math.max(0, holder.expiresAt - holder.now)} s)` : "another run"}; waited ${waitedSeconds} s. Wait for it to finish, or raise --lock-timeout.`,
			"E_LOCK_HELD",
		);
		this.name = "LockHeldError";
		this.holder = holder;
	}
}

/** Claims the lock, polling until `timeoutMs`; throws LockHeldError naming the holder. */
export async function acquireLock(
	db: SqlExecutor,
	options: MigrationLockOptions,
): Promise<{ tookOverFrom: LockHolder | undefined; state: RemoteState | undefined }> {
	const { now = Date.now, sleep: pause = sleep } = options;
	const started = now();
	for (;;) {
		const outcome = await tryClaimLock(db, options);
		if (outcome.acquired) return { tookOverFrom: outcome.tookOverFrom, state: outcome.state };
		const waited = now() - started;
		if (waited >= options.timeoutMs)
			throw new LockHeldError(outcome.holder, Math.round(waited / 1000));
		options.onWait?.(outcome.holder);
		await pause(
			Math.min(options.pollMs ?? 1000, Math.max(50, options.timeoutMs - waited)),
			options.signal,
		);
	}
}

export interface MigrationLockOptions {
	migrationsTable: string;
	runId: string;
	owner: string;
	ttlSeconds: number;
	timeoutMs: number;
	pollMs?: number;
	signal?: AbortSignal;
	onWait?: (holder: LockHolder | undefined) => void;
	/** The claim also proves the database has no schema object (a never-migrated database). */
	requireEmpty?: boolean;
	/** The pause of the wait and of the claim's and release's retries (tests pass their own). */
	sleep?: Sleep;
	/** The clock the wait is measured on (Date.now unless a test passes its own). */
	now?: () => number;
}

/** What the body of withMigrationLock sees, and how it shapes the one release request. */
export interface HeldLock {
	runId: string;
	ttlSeconds: number;
	tookOverFrom: LockHolder | undefined;
	/** The state read in the claim's own request (undefined when that answer was lost). */
	state: RemoteState | undefined;
	/** Statements sent in the release request, before the release itself (run record, durations). */
	finalStatements: string[];
	/** After a Time Travel restore the lock row is the bookmark's: clear it whoever it names. */
	clearAll: boolean;
	/** The body's last request already released the lock (with its own final record): none sent. */
	released: boolean;
}

export interface LockRelease {
	released: boolean;
	/** Set when neither the release request nor a bare release got through. */
	error?: string;
}

/**
 * The one lock lifecycle (migrate, baseline, restore): claim (throws LockHeldError), run `fn`,
 * then release in one request with the body's final statements, whatever `fn` did.
 */
export async function withMigrationLock<T>(
	db: SqlExecutor,
	options: MigrationLockOptions,
	fn: (lock: HeldLock) => Promise<T>,
): Promise<{ value: T; release: LockRelease }> {
	const claimed = await acquireLock(db, options);
	const lock: HeldLock = {
		runId: options.runId,
		ttlSeconds: options.ttlSeconds,
		tookOverFrom: claimed.tookOverFrom,
		state: claimed.state,
		finalStatements: [],
		clearAll: false,
		released: false,
	};
	let outcome: { ok: true; value: T } | { ok: false; error: unknown };
	try {
		outcome = { ok: true, value: await fn(lock) };
	} catch (error) {
		outcome = { ok: false, error };
	}
	// Whatever fn did: a lock left behind blocks every migrate for its whole lease.
	const release: LockRelease = lock.released
		? { released: true }
		: await releaseLock(db, lock, { sleep: options.sleep });
	if (!outcome.ok) throw outcome.error;
	return { value: outcome.value, release };
}

// A final statement without its `;` would run into the release (`near "DELETE": syntax error`);
// after a newline, so a trailing `-- comment` cannot swallow the `;`.
const terminated = (sql: string) =>
	splitStatements(sql).at(-1)?.terminated === false ? `${sql}\n;` : sql;

/** The one release request: the body's final statements, then the release; a bare retry. */
export async function releaseLock(
	db: SqlExecutor,
	lock: Pick<HeldLock, "runId" | "finalStatements" | "clearAll">,
	{ sleep }: { sleep?: Sleep } = {},
): Promise<LockRelease> {
	const releaseSql = lock.clearAll ? `DELETE FROM ${LOCK_TABLE};` : releaseLockSql(lock.runId);
	const sql = [...lock.finalStatements.map(terminated), releaseSql].join("\n");
	try {
		await readWithRetry(() => db.query(sql, { write: true }), { attempts: 4, sleep });
		return { released: true };
	} catch (error) {
		if (lock.finalStatements.length === 0)
			return { released: false, error: (error as Error).message };
	}
	try {
		await readWithRetry(() => db.query(releaseSql, { write: true }), { attempts: 4, sleep });
		return { released: true };
	} catch (error) {
		return { released: false, error: (error as Error).message };
	}
}
