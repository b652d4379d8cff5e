import type { D1Client } from "../cloudflare/d1-client.ts";
import type { D1Database } from "../config/schema.ts";
import { DEFAULT_LOCK_TIMEOUT_SECONDS, DEFAULT_LOCK_TTL_SECONDS } from "../constants.ts";
import { UserError } from "../errors.ts";
import { describeOwner, readGitSha } from "../git.ts";
import {
	type ApplyOutcome,
	applyPlan,
	isLockLost,
	MAX_REQUEST_SQL_BYTES,
	type MigrationRow,
	replayDigests,
	validatedReleaseSql,
} from "../migrations/apply.ts";
import type { Catalog, Migration } from "../migrations/catalog.ts";
import { readCheckedCatalog } from "../migrations/check.ts";
import {
	checkDrift,
	checkValidation,
	planRows,
	readRetiredMigrations,
	replaySchemaThrough,
} from "../migrations/drift.ts";
import type { LedgerState } from "../migrations/ledger.ts";
import { fenceSql, type RunRecord, runRecordSql } from "../migrations/ledger.ts";
import { limitPlan, type MigrationPlan, planMigrations } from "../migrations/plan.ts";
import {
	DEFAULT_COPY_BUDGET,
	formatNotCopied,
	readCopy,
	rehearseOnCopy,
} from "../migrations/rehearse.ts";
import {
	DatabaseNotEmptyError,
	emptyState,
	type HeldLock,
	LockHeldError,
	type LockHolder,
	type RemoteState,
	readRemoteState,
	readStateIfMigrated,
	readWithRetry,
	withMigrationLock,
} from "../migrations/remote.ts";
import { replayMigrations } from "../migrations/replay.ts";
import { type GuardedTable, parseTouchedTables, planRowGuard } from "../migrations/row-guard.ts";
import { type Finding, hasErrors, type StepResult } from "../report/model.ts";
import { newRunId, openRemote, type RemoteArgs, restoreCommands } from "./_remote.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";

export type { MigrationOutcome, MigrationRow } from "../migrations/apply.ts";
export { describeD1Failure } from "../migrations/apply.ts";
export { checkDrift, planRows, replaySchemaThrough } from "../migrations/drift.ts";

export interface MigrateArgs extends RemoteArgs {
	dryRun?: boolean;
	autoRestore?: boolean;
	rehearse?: boolean;
	allowOutOfOrder?: boolean;
	lockTimeoutSeconds?: number;
	/** Lease length; a run that dies leaves a lock that others take over after this. */
	lockTtlSeconds?: number;
	/** `--to NNNN`: apply pending migrations up to and including this number, no further. */
	to?: string;
}

/** What a migrate report carries (`data` of its step), as one typed value. */
export type MigrateData = {
	environment: string | null;
	database: { binding: string; name: string | null; id: string | null };
	dryRun: boolean;
	head?: string | null;
	bookmark: string | null;
	lock: {
		owner?: string;
		runId?: string;
		tookOverFrom?: LockHolder | null;
		holder?: LockHolder | null;
		released?: boolean;
	} | null;
	restore: {
		commands: string[];
		performed: boolean;
		confirmed?: boolean;
		headAfterRestore?: string | null;
		refused?: string;
	} | null;
	rehearsal?: {
		ok: boolean;
		copy?: { rows: number; bytes: number; complete: boolean };
		predictions?: { name: string; predictedMs: number }[];
	};
	validated?: boolean;
	/** Stopped by Ctrl-C / SIGTERM (exit 130). */
	interrupted?: boolean;
	migrations: MigrationRow[];
	requests: number;
};

/** One migrate run: its inputs, and what the phases have found and decided so far. */
interface Session {
	ctx: StepContext;
	args: MigrateArgs;
	started: number;
	client: D1Client;
	database: D1Database;
	findings: Finding[];
	data: MigrateData;
	rows: Map<string, MigrationRow>;
	runId: string;
	owner: string;
	ttl: number;
	retired: Map<string, Migration>;
	/** The commit being migrated (read once, when the lock is taken). */
	sha: string | null;
	/** `--to` as a number. */
	to?: number;
}

const interrupted = (s: Session) => s.ctx.signal?.aborted === true;

function finish(s: Session, ok: boolean, summary: string): StepResult {
	const data: MigrateData = {
		...s.data,
		migrations: [...s.rows.values()],
		// A binding without database_id: the UUID its name was looked up to.
		database: { ...s.data.database, id: s.data.database.id ?? s.client.databaseId ?? null },
		requests: s.client.requestCount,
	};
	return makeStepResult("migrate", s.started, {
		ok: ok && !hasErrors(s.findings) && !data.interrupted,
		summary,
		findings: s.findings,
		data,
	});
}

const setRows = (s: Session, rows: readonly MigrationRow[]) => {
	for (const row of rows) s.rows.set(row.name, row);
};

/** Ctrl-C before the first write: nothing was written, the run stops cleanly (exit 130). */
function stopBeforeWrite(s: Session): StepResult {
	s.data.interrupted = true;
	s.findings.push({
		code: "INTERRUPTED",
		severity: "error",
		message: "interrupted (Ctrl-C / SIGTERM) before the first write: nothing was written.",
	});
	return finish(s, false, "interrupted before any write: nothing was written");
}

/** Local checks only: catalog, lint and a fresh-database replay. */
function preflightLocal(s: Session): Catalog | undefined {
	const { catalog, findings } = readCheckedCatalog(s.args.project, s.database);
	s.findings.push(...findings);
	const replay = replayMigrations(catalog.migrations, {
		migrationsTable: s.database.migrationsTable,
	});
	if (replay.failure) {
		s.findings.push({
			code: "REPLAY_FAILED",
			severity: "error",
			file: replay.failure.path,
			line: replay.failure.line,
			message: `${replay.failure.message}; fix it before migrating (run \`workers-pipeline migration-test\`).`,
		});
	}
	s.retired = readRetiredMigrations(s.args.project.root, catalog);
	return hasErrors(s.findings) ? undefined : catalog;
}

/** `--to`, checked against the files before anything is read: a number one of them has. */
function parseTo(args: MigrateArgs, catalog: Catalog): number | undefined {
	if (args.to === undefined) return undefined;
	if (!/^\d+$/.test(args.to)) {
		throw new UserError(`--to expects a migration number such as 0007, not "${args.to}".`);
	}
	const to = Number.parseInt(args.to, 10);
	if (!catalog.migrations.some((m) => m.number === to)) {
		throw new UserError(
			`--to ${args.to}: no migration file is numbered ${args.to}; pass the number of one of the files in ${catalog.dir}.`,
		);
	}
	return to;
}

/** The plan on this ledger, cut at `--to` when given. */
function planFor(s: Session, catalog: Catalog, ledger: LedgerState): MigrationPlan {
	const full = planMigrations(catalog, ledger, { allowOutOfOrder: s.args.allowOutOfOrder });
	// Rows come from the whole plan: what --to leaves out still shows as pending.
	setRows(s, planRows(full));
	return limitPlan(full, s.to);
}

/** Every finding that stops a run on this state: checksums, order, ledger shape, drift. */
function stateFindings(s: Session, catalog: Catalog, plan: MigrationPlan, state: RemoteState) {
	const findings = [...plan.findings];
	if (!state.ledgerUnique) {
		findings.push({
			code: "LEDGER_TABLE_SHAPE",
			severity: "error",
			message: `${s.database.migrationsTable} exists but its name column is not UNIQUE: it is not the table wrangler creates, so "applied once" cannot be checked on it. Recreate it as wrangler does (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at) keeping its rows, or point migrations_table at wrangler's table.`,
		});
	}
	if (hasErrors(findings)) return findings;
	return [
		...findings,
		...checkDrift(catalog, plan, state.schema, {
			table: s.database.migrationsTable,
			retired: s.retired,
		}),
	];
}

/** What the preflight planned on; `requireEmpty` when it assumed a never-migrated, empty database. */
interface Planned {
	plan: MigrationPlan;
	state: RemoteState;
	requireEmpty?: boolean;
}

/** Remote reads only: ledger, checksums, order, drift. Plans once. */
async function preflightRemote(s: Session, catalog: Catalog): Promise<Planned | StepResult> {
	s.ctx.progress(
		`reading the ledger of ${s.database.databaseName ?? s.client.databaseId ?? s.database.binding}`,
	);
	const table = s.database.migrationsTable;
	const read = await readWithRetry(() => readStateIfMigrated(s.client, table), {
		signal: s.ctx.signal,
	});
	if (!("missing" in read)) return judgeState(s, catalog, read);
	const assumed = planOnEmpty(s, catalog, read.missing);
	if (assumed) return assumed;
	return readAndJudge(s, catalog);
}

/** The full state read (a second request on a database missing a ledger table), then judged. */
async function readAndJudge(s: Session, catalog: Catalog): Promise<Planned | StepResult> {
	s.rows.clear();
	const state = await readWithRetry(() => readRemoteState(s.client, s.database.migrationsTable), {
		signal: s.ctx.signal,
	});
	return judgeState(s, catalog, state);
}

/**
 * wrangler's ledger is missing, so the database was never migrated and is most likely empty:
 * plan on an empty state, and let the lock claim prove it (emptyDatabaseSql) instead of reading
 * the schema first. Only when that plan applies something and finds nothing to report; never for
 * a dry run or a rehearsal, which must not write. If the proof fails, nothing is written and the
 * state is read as usual.
 */
function planOnEmpty(s: Session, catalog: Catalog, missing: string): Planned | undefined {
	if (s.args.dryRun || s.args.rehearse) return undefined;
	if (missing.toLowerCase() !== s.database.migrationsTable.toLowerCase()) return undefined;
	const state = emptyState(s.database.migrationsTable);
	const full = planMigrations(catalog, state.ledger, { allowOutOfOrder: s.args.allowOutOfOrder });
	const plan = limitPlan(full, s.to);
	if (plan.pending.length === 0 || stateFindings(s, catalog, plan, state).length) return undefined;
	setRows(s, planRows(full));
	s.data.head = plan.head ?? null;
	return { plan, state, requireEmpty: true };
}

/** The preflight's verdict on a state read before the lock. */
function judgeState(s: Session, catalog: Catalog, state: RemoteState): Planned | StepResult {
	const plan = planFor(s, catalog, state.ledger);
	s.data.head = plan.head ?? null;
	s.findings.push(...stateFindings(s, catalog, plan, state));
	if (hasErrors(s.findings)) return finish(s, false, "preflight failed: nothing was written");
	if (plan.pending.length === 0 && plan.toRecord.length === 0) {
		return finish(
			s,
			true,
			`nothing to apply${s.to !== undefined ? ` up to ${s.args.to}` : ""}: ${plan.applied.length} migration(s) applied, all verified`,
		);
	}
	if (s.args.dryRun) {
		return finish(
			s,
			true,
			`dry run: would apply ${plan.pending.length} migration(s)${plan.toRecord.length ? ` and record checksums of ${plan.toRecord.length} applied by wrangler` : ""}; nothing was written`,
		);
	}
	return { plan, state };
}

/**
 * Copies the remote data with paged SELECTs (never the export API), replays the pending
 * migrations on the copy, and predicts each one's duration from its time there.
 */
async function rehearse(s: Session, pending: readonly Migration[]): Promise<Finding[]> {
	s.ctx.progress("rehearsal: copying the remote database with paged reads");
	const { copy, report } = await readCopy(s.client, DEFAULT_COPY_BUDGET, s.ctx.progress);
	try {
		s.ctx.progress(`rehearsal: replaying ${pending.length} pending migration(s) on the copy`);
		const result = rehearseOnCopy(copy, pending, {
			migrationsTable: s.database.migrationsTable,
			environment: s.args.env ?? "top-level Worker's",
		});
		s.data.rehearsal = {
			ok: result.findings.length === 0,
			copy: { rows: report.rows, bytes: report.bytes, complete: report.complete },
			predictions: result.predictions,
		};
		const findings = [...result.findings, ...formatNotCopied(report)];
		if (!report.complete) {
			findings.push({
				code: "REHEARSAL_PARTIAL",
				severity: "warning",
				message: `the rehearsal copy stopped at its budget (${report.rows} rows, ${report.bytes} bytes; cut short: ${report.tables
					.filter((t) => !t.complete)
					.map((t) => t.name)
					.join(", ")}): a data problem in the rows not copied would not show.`,
			});
		}
		for (const p of result.predictions) {
			if (p.predictedMs > LONG_MIGRATION_MS) {
				findings.push({
					code: "REHEARSAL_SLOW",
					severity: "warning",
					message: `${p.name} took ${p.predictedMs} ms on the copy; D1 fails a request past 30 s (developers.cloudflare.com/d1/platform/limits), so it goes through D1's import API (atomic, with its ledger rows). Consider splitting it.`,
				});
			}
		}
		return findings;
	} finally {
		copy.close();
	}
}

/** Past this on the copy, a migration risks D1's 30 s per-request limit. */
const LONG_MIGRATION_MS = 20_000;

const ledgerKey = (state: RemoteState) =>
	JSON.stringify([
		state.ledger.applied.map((r) => r.name),
		[...state.ledger.audit.values()].map((a) => [a.name, a.checksum]).sort(),
		state.ledgerUnique,
	]);

/**
 * The plan stands if the state read under the lock has the same ledger as the one planned on;
 * otherwise another run migrated while this one waited, and the plan is made again on it.
 */
function confirmPlan(
	s: Session,
	catalog: Catalog,
	planned: Planned,
	locked: RemoteState,
): { plan: MigrationPlan; state: RemoteState } | string {
	if (ledgerKey(locked) === ledgerKey(planned.state)) return { plan: planned.plan, state: locked };
	const plan = planFor(s, catalog, locked.ledger);
	s.data.head = plan.head ?? null;
	const findings = stateFindings(s, catalog, plan, locked);
	if (hasErrors(findings)) {
		s.findings.push(
			...findings.filter((f) => !s.findings.some((g) => g.code === f.code && g.file === f.file)),
		);
		return "preflight failed under the lock: nothing was written";
	}
	return { plan, state: locked };
}

const runRecord = (s: Session, status: RunRecord["status"], detail: string | null): RunRecord => ({
	runId: s.runId,
	owner: s.owner,
	environment: s.args.env ?? null,
	gitSha: s.sha,
	bookmark: s.data.bookmark,
	status,
	detail,
});

/** Why a migration must go through the import API instead of one request, if it must. */
function importReason(s: Session, migration: Migration): string | undefined {
	const bytes = Buffer.byteLength(migration.sql, "utf8");
	if (bytes > MAX_REQUEST_SQL_BYTES) {
		return `its SQL is ${bytes} bytes, more than one request carries (${MAX_REQUEST_SQL_BYTES})`;
	}
	const predicted = s.data.rehearsal?.predictions?.find((p) => p.name === migration.name);
	if (predicted && predicted.predictedMs > LONG_MIGRATION_MS) {
		return `the rehearsal predicts ${predicted.predictedMs} ms, near D1's 30 s per-request limit`;
	}
	return undefined;
}

/** The row-count guard per pending migration, on the schema the migrations before it produce. */
function guardFor(s: Session, catalog: Catalog, plan: MigrationPlan) {
	const before = plan.applied.map((a) => a.name);
	const order = plan.pending.map((p) => p.migration.name);
	return (migration: Migration): GuardedTable[] => {
		if (parseTouchedTables(migration.sql).emptied.size === 0) return [];
		const through = [...before, ...order.slice(0, order.indexOf(migration.name))];
		const schema = replaySchemaThrough(catalog, through, s.database.migrationsTable, s.retired);
		return schema ? planRowGuard(migration.sql, schema) : [];
	};
}

/**
 * The release that rides in the last migration's request: only when D1 then has exactly the
 * ledger and raw schema the replay of the ledger plus the plan gives (else the lock stays held
 * and validation, then recovery, run under it as before). Undefined when a file is missing.
 */
function releaseWhenValid(
	s: Session,
	catalog: Catalog,
	plan: MigrationPlan,
	state: RemoteState,
): string | undefined {
	if (plan.pending.length === 0) return undefined;
	const byName = new Map([...s.retired, ...catalog.migrations.map((m) => [m.name, m] as const)]);
	const names = [
		...state.ledger.applied.map((r) => r.name),
		...plan.pending.map((p) => p.migration.name),
	];
	const migrations = names.map((n) => byName.get(n));
	if (migrations.some((m) => m === undefined)) return undefined;
	const digests = replayDigests(migrations as Migration[], s.database.migrationsTable);
	if (!digests) return undefined;
	return validatedReleaseSql(digests, {
		migrationsTable: s.database.migrationsTable,
		record: runRecord(s, "succeeded", null),
	});
}

/** Validation after apply: the remote schema must equal the replay at the ledger's head. */
async function validate(s: Session, catalog: Catalog, outcome: ApplyOutcome): Promise<void> {
	// Released by the last migration's request whose answer was lost: its condition (the replay's
	// ledger and raw schema) was stronger than this check, and the state may now be another run's.
	if (outcome.released && !outcome.stateAfter) {
		s.data.validated = true;
		return;
	}
	s.ctx.progress("validating the remote schema against the replay");
	const after =
		outcome.stateAfter ??
		(await readWithRetry(() => readRemoteState(s.client, s.database.migrationsTable)));
	const findings = checkValidation(
		catalog,
		after.ledger.applied.map((r) => r.name),
		after.schema,
		{ table: s.database.migrationsTable, retired: s.retired },
	);
	s.findings.push(...findings);
	if (findings.length === 0) s.data.validated = true;
}

/**
 * Before any automatic restore: this run must still hold the lock, every migration it applied
 * must still be in the ledger (no restore by an operator meanwhile), and nothing else may have
 * written since this run's last write (the bookmark now equals the one at that moment).
 * Returns why a restore would undo someone else's work, or undefined when it is safe.
 */
async function restoreRefusal(s: Session, outcome: ApplyOutcome): Promise<string | undefined> {
	if (outcome.failure?.lockLost) {
		return "this run lost the migration lock: another run may have migrated since, and a restore would undo its migrations and every row the app wrote since";
	}
	let fencedAt: number;
	try {
		await s.client.query(fenceSql(s.runId, s.ttl), { write: true });
		fencedAt = Date.now();
	} catch (error) {
		if (isLockLost(error)) {
			return "this run lost the migration lock: another run (or a restore) changed the database since, and a restore would undo that";
		}
		return `the lock could not be confirmed (${(error as Error).message})`;
	}
	const state = await readWithRetry(() => readRemoteState(s.client, s.database.migrationsTable));
	const names = new Set(state.ledger.applied.map((r) => r.name));
	const gone = outcome.applied.map((a) => a.name).filter((n) => !names.has(n));
	if (gone.length) {
		return `migrations this run applied (${gone.join(", ")}) are no longer in the ledger: someone restored the database during this run; restoring again would undo their restore`;
	}
	const [now, atFence] = await Promise.all([
		readWithRetry(() => s.client.getBookmark()),
		readWithRetry(() => s.client.getBookmark(new Date(fencedAt).toISOString())),
	]);
	if (now !== atFence) {
		return `the database was written after this run's last write (bookmark ${atFence} then, ${now} now): a restore would also undo those writes (rows the app wrote since ${new Date(fencedAt).toISOString()})`;
	}
	return undefined;
}

/** On a failure after the first write: restore (when asked and provably safe) or say how. */
async function recover(s: Session, outcome: ApplyOutcome, oldHead: string | undefined) {
	const bookmark = s.data.bookmark as string;
	if (!s.args.autoRestore) {
		if (outcome.failure?.lockLost) {
			s.findings.push({
				code: "RESTORE_UNSAFE",
				severity: "warning",
				message: `do not restore bookmark ${bookmark}: this run lost the migration lock, so another run may have migrated since, and a restore would undo its migrations and the app's rows written since. Check the other run's report and \`workers-pipeline plan\`.`,
			});
			return;
		}
		s.findings.push({
			code: "RESTORE_AVAILABLE",
			severity: "warning",
			message: `migrations applied before the failure stay applied. To put the database back as it was before this run (this also undoes anything the app wrote since):\n  ${restoreCommands(s.args.env, s.database, bookmark).join("\n  ")}`,
		});
		return;
	}
	const refusal = await restoreRefusal(s, outcome);
	if (refusal) {
		s.data.restore = {
			...(s.data.restore ?? { commands: [] }),
			performed: false,
			refused: refusal,
		};
		s.findings.push({
			code: "RESTORE_REFUSED",
			severity: "error",
			message: `did not restore bookmark ${bookmark}: ${refusal}. The database stays as it is; check it with \`workers-pipeline plan\`.`,
		});
		return;
	}
	s.ctx.progress(`restoring Time Travel bookmark ${bookmark}`);
	await s.client.restore(bookmark);
	const back = await readWithRetry(() => readRemoteState(s.client, s.database.migrationsTable));
	const head = back.ledger.applied.at(-1)?.name;
	const confirmed = head === oldHead;
	s.data.restore = {
		...(s.data.restore ?? { commands: [] }),
		performed: true,
		confirmed,
		headAfterRestore: head ?? null,
	};
	if (confirmed) {
		for (const row of s.rows.values()) if (row.status === "applied") row.status = "not-run";
		return "restored" as const;
	}
	s.findings.push({
		code: "RESTORE_UNCONFIRMED",
		severity: "error",
		message: `restored bookmark ${bookmark}, but the ledger head is ${head ?? "(empty)"}, not ${oldHead ?? "(empty)"}; check the database now.`,
	});
}

function applyFindings(s: Session, outcome: ApplyOutcome): void {
	setRows(s, outcome.rows);
	if (outcome.failure) {
		s.findings.push({
			code: outcome.failure.lockLost
				? "LOCK_LOST"
				: outcome.failure.rowsLost
					? "ROW_COUNT_GUARD"
					: outcome.failure.ambiguous
						? "APPLY_OUTCOME_UNKNOWN"
						: "APPLY_FAILED",
			severity: "error",
			file: outcome.failure.migration.path,
			message: outcome.failure.message,
		});
	}
	if (outcome.interrupted) {
		s.data.interrupted = true;
		s.findings.push({
			code: "INTERRUPTED",
			severity: "error",
			message: `interrupted (Ctrl-C / SIGTERM) during apply: the migration in flight finished, no more were applied (${outcome.applied.length} applied); the lock was released. Rerun migrate to apply the rest.`,
		});
	}
}

/** Under the lock: confirm the plan, bookmark, apply, validate, recover; the summary of the run. */
async function applyUnderLock(
	s: Session,
	catalog: Catalog,
	planned: Planned,
	lock: HeldLock,
): Promise<{ ok: boolean; summary: string }> {
	let status: RunRecord["status"] = "failed";
	let detail: string | null = null;
	// Sent with the release, unless the last migration's request already released the lock and
	// recorded the run as succeeded (validatedReleaseSql).
	const record = () => {
		lock.finalStatements = [runRecordSql(runRecord(s, status, detail))];
	};
	try {
		const locked =
			lock.state ??
			(await readWithRetry(() => readRemoteState(s.client, s.database.migrationsTable)));
		const confirmed = confirmPlan(s, catalog, planned, locked);
		if (typeof confirmed === "string") {
			detail = "preflight failed under the lock";
			return { ok: false, summary: confirmed };
		}
		const { plan } = confirmed;
		if (plan.pending.length === 0 && plan.toRecord.length === 0) {
			status = "nothing-to-do";
			return {
				ok: true,
				summary: "nothing to apply (another run applied everything while this one waited)",
			};
		}
		if (interrupted(s)) {
			detail = "interrupted before the first write";
			return { ok: false, summary: stopBeforeWrite(s).summary };
		}
		const bookmark = await readWithRetry(() => s.client.getBookmark());
		s.data.bookmark = bookmark;
		s.data.restore = {
			commands: restoreCommands(s.args.env, s.database, bookmark),
			performed: false,
		};
		const outcome = await applyPlan(plan, s.client, {
			run: {
				migrationsTable: s.database.migrationsTable,
				runId: s.runId,
				ttlSeconds: s.ttl,
				owner: s.owner,
				gitSha: s.sha,
				bookmark,
			},
			firstWrite: [runRecordSql(runRecord(s, "running", null))],
			guardFor: guardFor(s, catalog, plan),
			importReason: (m) => importReason(s, m),
			release: releaseWhenValid(s, catalog, plan, confirmed.state),
			progress: s.ctx.progress,
			stopRequested: () => interrupted(s),
		});
		lock.released = outcome.released;
		applyFindings(s, outcome);
		if (!outcome.failure && !outcome.interrupted) await validate(s, catalog, outcome);
		if (hasErrors(s.findings) && outcome.wrote && !outcome.interrupted) {
			if ((await recover(s, outcome, plan.head)) === "restored") status = "restored";
		} else if (!hasErrors(s.findings)) status = "succeeded";
		const failed = outcome.failure?.migration.name;
		detail = failed ? `failed at ${failed}` : outcome.interrupted ? "interrupted" : null;
		const summary = outcome.interrupted
			? `interrupted after ${outcome.applied.length} migration(s); the rest not run (bookmark ${bookmark})`
			: hasErrors(s.findings)
				? `${failed ? `failed at ${failed}` : "validation failed"}${status === "restored" ? "; database restored to the bookmark" : ""} (bookmark ${bookmark})`
				: `applied ${outcome.applied.length} migration(s)${outcome.recorded.length ? `, recorded ${outcome.recorded.length} applied by wrangler` : ""}; schema validated; bookmark ${bookmark}`;
		return { ok: !hasErrors(s.findings), summary };
	} catch (error) {
		detail = `error: ${(error as Error).message.split("\n")[0]}`;
		throw error;
	} finally {
		record();
	}
}

/** Takes the lock, applies under it, and releases it in one request with the run's record. */
async function lockAndApply(s: Session, catalog: Catalog, planned: Planned): Promise<StepResult> {
	let result: { ok: boolean; summary: string };
	s.sha = readGitSha(s.args.project.root, s.ctx.env);
	try {
		const { value, release } = await withMigrationLock(
			s.client,
			{
				migrationsTable: s.database.migrationsTable,
				runId: s.runId,
				owner: s.owner,
				ttlSeconds: s.ttl,
				timeoutMs: (s.args.lockTimeoutSeconds ?? DEFAULT_LOCK_TIMEOUT_SECONDS) * 1000,
				signal: s.ctx.signal,
				requireEmpty: planned.requireEmpty,
				onWait: (holder) =>
					s.ctx.progress(
						`waiting for the migration lock held by ${holder?.owner ?? "another run"}`,
					),
			},
			async (lock) => {
				s.data.lock = { owner: s.owner, runId: s.runId, tookOverFrom: lock.tookOverFrom ?? null };
				if (lock.tookOverFrom) s.findings.push(takeOverFinding(lock.tookOverFrom));
				return applyUnderLock(s, catalog, planned, lock);
			},
		);
		result = value;
		if (s.data.lock) s.data.lock.released = release.released;
		if (release.error) {
			s.findings.push({
				code: "LOCK_RELEASE_FAILED",
				severity: "warning",
				message: `could not release the migration lock (${release.error}); it expires by itself within ${s.ttl} s.`,
			});
		}
	} catch (error) {
		// The database was not empty after all: the claim wrote nothing; read it and judge it.
		if (error instanceof DatabaseNotEmptyError) return judgeAndLock(s, catalog);
		if (!(error instanceof LockHeldError)) throw error;
		s.data.lock = { holder: error.holder ?? null };
		s.findings.push({ code: "LOCK_HELD", severity: "error", message: error.message });
		return finish(s, false, "lock held by another run: nothing was applied");
	}
	return finish(s, result.ok, result.summary);
}

/** The usual way after a failed emptiness proof: the state read, judged, then the lock. */
async function judgeAndLock(s: Session, catalog: Catalog): Promise<StepResult> {
	if (interrupted(s)) return stopBeforeWrite(s);
	const planned = await readAndJudge(s, catalog);
	if ("name" in planned) return planned;
	if (interrupted(s)) return stopBeforeWrite(s);
	return lockAndApply(s, catalog, planned);
}

const takeOverFinding = (from: LockHolder): Finding => ({
	code: "LOCK_TAKEN_OVER",
	severity: "warning",
	message: `took over a stale migration lock from ${from.owner} (run ${from.runId}), expired ${from.now - from.expiresAt} s ago; that run probably died. Check its report.`,
});

/** Any error after the preflight still yields a report with the bookmark and the way back. */
function errorResult(s: Session, error: unknown): StepResult {
	if (interrupted(s) && s.data.bookmark === null) return stopBeforeWrite(s);
	const bookmark = s.data.bookmark;
	const restore = bookmark
		? `\nIf the database is in a bad state, put it back as it was before this run:\n  ${restoreCommands(s.args.env, s.database, bookmark).join("\n  ")}`
		: "";
	s.findings.push({
		code: "MIGRATE_ERROR",
		severity: "error",
		message: `${(error as Error)?.message ?? String(error)}${restore}`,
	});
	return finish(s, false, `stopped by an error${bookmark ? ` (bookmark ${bookmark})` : ""}`);
}

function openSession(ctx: StepContext, args: MigrateArgs): Session {
	const started = performance.now();
	const { client, database } = openRemote(ctx, args);
	return {
		ctx,
		args,
		started,
		client,
		database,
		findings: [],
		rows: new Map(),
		runId: newRunId(),
		owner: describeOwner(ctx.env),
		ttl: args.lockTtlSeconds ?? DEFAULT_LOCK_TTL_SECONDS,
		retired: new Map(),
		sha: null,
		data: {
			environment: args.env ?? null,
			database: {
				binding: database.binding,
				name: database.databaseName ?? null,
				id: database.databaseId ?? null,
			},
			bookmark: null,
			lock: null,
			restore: null,
			dryRun: Boolean(args.dryRun),
			migrations: [],
			requests: 0,
		},
	};
}

export const migrateStep = defineStep<MigrateArgs>({
	name: "migrate",
	async run(ctx, args) {
		const s = openSession(ctx, args);
		try {
			const catalog = preflightLocal(s);
			if (!catalog) return finish(s, false, "preflight failed: nothing was sent to D1");
			s.to = parseTo(args, catalog);
			if (interrupted(s)) return stopBeforeWrite(s);
			const planned = await preflightRemote(s, catalog);
			if ("name" in planned) return planned;
			if (interrupted(s)) return stopBeforeWrite(s);
			// Before the lock: a rehearsal only reads, so a failing one leaves the database untouched.
			if (args.rehearse && planned.plan.pending.length) {
				const rehearsal = await rehearse(
					s,
					planned.plan.pending.map((p) => p.migration),
				);
				s.findings.push(...rehearsal);
				if (hasErrors(rehearsal)) {
					return finish(
						s,
						false,
						"rehearsal on a copy of the data failed: production was not touched",
					);
				}
			}
			if (interrupted(s)) return stopBeforeWrite(s);
			return await lockAndApply(s, catalog, planned);
		} catch (error) {
			// Before the lock nothing was written: the error itself is the answer (a bad token
			// exits 2). Under the lock the report must carry the bookmark and the way back.
			if (!s.data.lock?.runId && !interrupted(s)) throw error;
			return errorResult(s, error);
		}
	},
});
