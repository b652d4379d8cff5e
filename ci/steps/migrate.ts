import Database from "better-sqlite3";
import { type D1Client, isAmbiguous, sleep } from "../cloudflare/d1-client.ts";
import type { D1Database } from "../config/schema.ts";
import { DEFAULT_LOCK_TIMEOUT_SECONDS } from "../constants.ts";
import type { D1ApiError } from "../errors.ts";
import type { Catalog, Migration } from "../migrations/catalog.ts";
import { checkMigrations } from "../migrations/check.ts";
import {
	durationSql,
	fenceSql,
	type RunRecord,
	recordSql,
	releaseLockSql,
	runRecordSql,
} from "../migrations/ledger.ts";
import { type MigrationPlan, planMigrations } from "../migrations/plan.ts";
import {
	acquireLock,
	LockHeldError,
	type LockHolder,
	type RemoteState,
	readAppliedNames,
	readRemoteState,
	readWithRetry,
	releaseLock,
} from "../migrations/remote.ts";
import { replayMigrations } from "../migrations/replay.ts";
import { diffSchema, formatSchemaDifferences, type Schema } from "../migrations/schema.ts";
import { type Finding, hasErrors, type StepResult } from "../report/model.ts";
import {
	describeOwner,
	gitSha,
	newRunId,
	openRemote,
	type RemoteArgs,
	restoreCommands,
} from "./_remote.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";

export interface MigrateArgs extends RemoteArgs {
	dryRun?: boolean;
	autoRestore?: boolean;
	rehearse?: boolean;
	allowOutOfOrder?: boolean;
	lockTimeoutSeconds?: number;
	/** Lease length; a run that dies leaves a lock that others take over after this. */
	lockTtlSeconds?: number;
}

export { DEFAULT_LOCK_TIMEOUT_SECONDS };
export const DEFAULT_LOCK_TTL_SECONDS = 300;
const MAX_WRITE_ATTEMPTS = 3;

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

interface MigrationRow {
	name: string;
	checksum: string | undefined;
	status: MigrationOutcome;
	durationMs?: number;
	attempts?: number;
	note?: string;
}

/** The expected schema with exactly these migrations applied, in the ledger's order. */
export function replaySchemaThrough(
	catalog: Catalog,
	names: readonly string[],
	table: string,
): Schema | undefined {
	const byName = new Map(catalog.migrations.map((m) => [m.name, m]));
	const migrations = names.map((n) => byName.get(n));
	if (migrations.some((m) => m === undefined)) return undefined;
	const result = replayMigrations(migrations as Migration[], { migrationsTable: table });
	return result.ok ? result.schema : undefined;
}

export function planRows(plan: MigrationPlan): MigrationRow[] {
	return [
		...plan.applied.map((a) => ({
			name: a.name,
			checksum: a.checksum,
			status: (a.status === "verified" || a.status === "unrecorded" || a.status === "retired"
				? a.status
				: "failed") as MigrationOutcome,
			...(a.status === "checksum-mismatch" || a.status === "missing-file"
				? { note: a.status }
				: {}),
		})),
		...plan.pending.map((p) => ({
			name: p.migration.name,
			checksum: p.migration.checksum,
			status: "pending" as MigrationOutcome,
		})),
	];
}

/** Describes a definite D1 failure of one migration, with D1's code and message. */
export function describeD1Failure(migration: Migration, error: D1ApiError): string {
	if (/lock_lost|workers_pipeline_fence/.test(error.message)) {
		return `${migration.name} was not applied: this run no longer holds the migration lock (it expired and another run took over). Nothing was written by this request; rerun migrate.`;
	}
	const code = error.d1Code ? ` (D1 error ${error.d1Code})` : "";
	return `${migration.name} failed on D1${code}: ${error.message}. The request was atomic: nothing of this migration was applied.`;
}

interface RunContext {
	ctx: StepContext;
	args: MigrateArgs;
	client: D1Client;
	database: D1Database & { databaseId: string };
	catalog: Catalog;
	runId: string;
	owner: string;
	sha: string | null;
	ttl: number;
}

/** One migration as ONE request (fence, SQL, ledger rows); an unclear answer is settled by a ledger read. */
async function applyMigration(
	run: RunContext,
	migration: Migration,
	bookmark: string,
): Promise<
	| { ok: true; durationMs: number; attempts: number; note?: string }
	| { ok: false; error: string; ambiguous: boolean }
> {
	const { client, database } = run;
	const sql = [
		fenceSql(run.runId, run.ttl),
		migration.sql,
		recordSql(
			database.migrationsTable,
			{
				name: migration.name,
				checksum: migration.checksum,
				gitSha: run.sha,
				appliedBy: run.owner,
				durationMs: null,
				bookmark,
				runId: run.runId,
				recordedBy: "migrate",
			},
			{ wrangler: true },
		),
	].join("\n");
	let lastError = "";
	for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
		const t0 = performance.now();
		try {
			await client.query(sql, { write: true });
			return { ok: true, durationMs: Math.round(performance.now() - t0), attempts: attempt };
		} catch (error) {
			if (!isAmbiguous(error)) {
				// After an unclear attempt, a refusal (table exists, UNIQUE on the ledger name) can
				// mean that attempt landed after the ledger read: the ledger says which.
				if (attempt > 1) {
					const applied = await readWithRetry(
						() => readAppliedNames(client, database.migrationsTable),
						{ signal: run.ctx.signal },
					).catch(() => undefined);
					if (applied?.has(migration.name)) {
						return {
							ok: true,
							durationMs: Math.round(performance.now() - t0),
							attempts: attempt,
							note: `an earlier attempt landed late (after: ${lastError}); the retry was refused and the ledger confirms it applied once`,
						};
					}
				}
				return {
					ok: false,
					error: describeD1Failure(migration, error as D1ApiError),
					ambiguous: false,
				};
			}
			lastError = (error as Error).message;
			run.ctx.progress(
				`${migration.name}: no clear answer (${lastError}); reading the ledger before any retry`,
			);
			let applied: Set<string>;
			try {
				applied = await readWithRetry(() => readAppliedNames(client, database.migrationsTable), {
					signal: run.ctx.signal,
				});
			} catch (readError) {
				return {
					ok: false,
					ambiguous: true,
					error: `${migration.name}: the apply request got no clear answer (${lastError}) and the ledger could not be read (${(readError as Error).message}). Whether it applied is unknown; run \`workers-pipeline plan\` before anything else.`,
				};
			}
			if (applied.has(migration.name)) {
				return {
					ok: true,
					durationMs: Math.round(performance.now() - t0),
					attempts: attempt,
					note: `confirmed applied by a ledger read after: ${lastError}`,
				};
			}
			// No wait after the last attempt: the ledger read just made must stay the last word
			// before the lock (whose fence refuses a late landing) is released.
			if (attempt < MAX_WRITE_ATTEMPTS) await sleep(250 * 2 ** (attempt - 1), run.ctx.signal);
		}
	}
	// The ledger read cannot rule out that the last attempt is still in flight: it can land until
	// this run releases the lock (after that, the fence refuses it). So the outcome is unknown.
	return {
		ok: false,
		ambiguous: true,
		error: `${migration.name}: ${MAX_WRITE_ATTEMPTS} attempts got no clear answer (last: ${lastError}); the ledger did not show it after the last one, but that attempt may still have landed before this run released its lock. Run \`workers-pipeline plan\` to see whether it applied, then rerun migrate.`,
	};
}

/** Loads a D1 export into a local database and replays the pending migrations on that copy. */
async function rehearse(run: RunContext, pending: readonly Migration[]): Promise<Finding[]> {
	run.ctx.progress("rehearsal: exporting the remote database");
	const dump = await run.client.exportSql({ signal: run.ctx.signal });
	const db = new Database(":memory:");
	try {
		db.exec(dump);
		db.pragma("foreign_keys = ON");
		run.ctx.progress(`rehearsal: replaying ${pending.length} pending migration(s) on the copy`);
		const result = replayMigrations(pending, {
			database: db,
			migrationsTable: run.database.migrationsTable,
		});
		if (!result.failure) return [];
		const f = result.failure;
		return [
			{
				code: "REHEARSAL_FAILED",
				severity: "error",
				file: f.path,
				line: f.line,
				message: `on a copy of the ${run.args.env} data, ${f.migration} fails: ${f.message}${f.code ? ` (${f.code})` : ""}. It works on an empty database, so the data is the problem (duplicates under a new UNIQUE index, NULLs under NOT NULL, …): fix the data or the migration. Production was not touched.`,
			},
		];
	} finally {
		db.close();
	}
}

export const migrateStep = defineStep<MigrateArgs>({
	name: "migrate",
	async run(ctx, args) {
		const started = performance.now();
		const target = openRemote(ctx, args);
		const { client, database } = target;
		const findings: Finding[] = [];
		const data: Record<string, unknown> = {
			environment: args.env,
			database: {
				binding: database.binding,
				name: database.databaseName ?? null,
				id: database.databaseId,
			},
			bookmark: null,
			lock: null,
			restore: null,
			dryRun: Boolean(args.dryRun),
		};
		const finish = (ok: boolean, summary: string, rows: MigrationRow[]): StepResult =>
			makeStepResult("migrate", started, {
				ok: ok && !hasErrors(findings),
				summary,
				findings,
				data: { ...data, migrations: rows, requests: client.requestCount },
			});

		// Preflight, local only: catalog, lint and a fresh-database replay.
		const { catalog, findings: staticFindings } = checkMigrations(args.project, database);
		findings.push(...staticFindings);
		const replay = replayMigrations(catalog.migrations, {
			migrationsTable: database.migrationsTable,
		});
		if (replay.failure) {
			findings.push({
				code: "REPLAY_FAILED",
				severity: "error",
				file: replay.failure.path,
				line: replay.failure.line,
				message: `${replay.failure.message}; fix it before migrating (run \`workers-pipeline migration-test\`).`,
			});
		}
		if (hasErrors(findings)) return finish(false, "preflight failed: nothing was sent to D1", []);

		// Preflight, remote reads only: ledger, checksums, order, drift.
		ctx.progress(`reading the ledger of ${database.databaseName ?? database.databaseId}`);
		let state = await readWithRetry(() => readRemoteState(client, database.migrationsTable), {
			signal: ctx.signal,
		});
		let plan = planMigrations(catalog, state.ledger, { allowOutOfOrder: args.allowOutOfOrder });
		findings.push(...plan.findings);
		data.head = plan.head ?? null;
		if (hasErrors(findings))
			return finish(false, "preflight failed: nothing was written", planRows(plan));
		const drift = checkDrift(catalog, plan, state.schema, database.migrationsTable);
		findings.push(...drift);
		if (hasErrors(findings))
			return finish(false, "preflight failed: nothing was written", planRows(plan));
		if (plan.pending.length === 0 && plan.toRecord.length === 0) {
			return finish(
				true,
				`nothing to apply: ${plan.applied.length} migration(s) applied, all verified`,
				planRows(plan),
			);
		}
		if (args.dryRun) {
			return finish(
				true,
				`dry run: would apply ${plan.pending.length} migration(s)${plan.toRecord.length ? ` and record checksums of ${plan.toRecord.length} applied by wrangler` : ""}; nothing was written`,
				planRows(plan),
			);
		}

		const run: RunContext = {
			ctx,
			args,
			client,
			database,
			catalog,
			runId: newRunId(),
			owner: describeOwner(ctx.env),
			sha: gitSha(args.project.root, ctx.env),
			ttl: args.lockTtlSeconds ?? DEFAULT_LOCK_TTL_SECONDS,
		};
		// Before the lock: a rehearsal only reads, so a failing one leaves the database untouched.
		if (args.rehearse && plan.pending.length) {
			const rehearsal = await rehearse(
				run,
				plan.pending.map((p) => p.migration),
			);
			findings.push(...rehearsal);
			data.rehearsal = { ok: rehearsal.length === 0 };
			if (rehearsal.length) {
				return finish(
					false,
					"rehearsal on a copy of the data failed: production was not touched",
					planRows(plan),
				);
			}
		}

		let tookOverFrom: LockHolder | undefined;
		let lockedState: RemoteState | undefined;
		try {
			({ tookOverFrom, state: lockedState } = await acquireLock(client, {
				migrationsTable: database.migrationsTable,
				runId: run.runId,
				owner: run.owner,
				ttlSeconds: run.ttl,
				timeoutMs: (args.lockTimeoutSeconds ?? DEFAULT_LOCK_TIMEOUT_SECONDS) * 1000,
				signal: ctx.signal,
				onWait: (holder) =>
					ctx.progress(`waiting for the migration lock held by ${holder?.owner ?? "another run"}`),
			}));
		} catch (error) {
			if (!(error instanceof LockHeldError)) throw error;
			data.lock = { holder: error.holder ?? null };
			findings.push({ code: "LOCK_HELD", severity: "error", message: error.message });
			return finish(false, "lock held by another run: nothing was applied", planRows(plan));
		}
		data.lock = { owner: run.owner, runId: run.runId, tookOverFrom: tookOverFrom ?? null };
		if (tookOverFrom) {
			findings.push({
				code: "LOCK_TAKEN_OVER",
				severity: "warning",
				message: `took over a stale migration lock from ${tookOverFrom.owner} (run ${tookOverFrom.runId}), expired ${tookOverFrom.now - tookOverFrom.expiresAt} s ago; that run probably died. Check its report.`,
			});
		}

		const rows = new Map<string, MigrationRow>();
		let bookmark: string | undefined;
		let wroteMigrations = false;
		let status: RunRecord["status"] = "failed";
		let detail: string | null = null;
		const durations: [string, number][] = [];
		try {
			// Another run may have migrated while we waited: plan again on the state read under the
			// lock (in the claim's own request; read again only if that answer was lost).
			state =
				lockedState ??
				(await readWithRetry(() => readRemoteState(client, database.migrationsTable), {
					signal: ctx.signal,
				}));
			plan = planMigrations(catalog, state.ledger, { allowOutOfOrder: args.allowOutOfOrder });
			for (const row of planRows(plan)) rows.set(row.name, row);
			const replanFindings = [
				...plan.findings,
				...checkDrift(catalog, plan, state.schema, database.migrationsTable),
			];
			if (hasErrors(replanFindings)) {
				findings.push(
					...replanFindings.filter(
						(f) => !findings.some((g) => g.code === f.code && g.file === f.file),
					),
				);
				detail = "preflight failed under the lock";
				return finish(false, "preflight failed under the lock: nothing was written", [
					...rows.values(),
				]);
			}
			if (plan.pending.length === 0 && plan.toRecord.length === 0) {
				status = "nothing-to-do";
				return finish(
					true,
					"nothing to apply (another run applied everything while this one waited)",
					[...rows.values()],
				);
			}

			bookmark = await readWithRetry(() => client.getBookmark(), { signal: ctx.signal });
			data.bookmark = bookmark;
			data.restore = { commands: restoreCommands(args.env, database, bookmark), performed: false };
			const oldHead = plan.head;
			// Idempotent (fence + upsert), so an unclear answer is simply retried.
			const runningSql = `${fenceSql(run.runId, run.ttl)}\n${runRecordSql({ runId: run.runId, owner: run.owner, environment: args.env ?? null, gitSha: run.sha, bookmark, status: "running", detail: null })}`;
			await readWithRetry(() => client.query(runningSql, { write: true }), {
				signal: ctx.signal,
			});

			// Migrations wrangler applied alone: the drift check above proved the files as they are
			// now produce the database as it is, so their checksums can be recorded.
			if (plan.toRecord.length) {
				const byName = new Map(catalog.migrations.map((m) => [m.name, m]));
				// Idempotent (fence + INSERT OR REPLACE), so an unclear answer is simply retried.
				const recordAdopted = [
					fenceSql(run.runId, run.ttl),
					...plan.toRecord.map((a) =>
						recordSql(
							database.migrationsTable,
							{
								name: a.name,
								checksum: byName.get(a.name)?.checksum ?? "",
								gitSha: run.sha,
								appliedBy: `wrangler (recorded by ${run.owner})`,
								durationMs: null,
								bookmark: bookmark ?? null,
								runId: run.runId,
								recordedBy: "adopted",
							},
							{ wrangler: false },
						),
					),
				].join("\n");
				await readWithRetry(() => client.query(recordAdopted, { write: true }), {
					signal: ctx.signal,
				});
				for (const a of plan.toRecord)
					rows.set(a.name, {
						...(rows.get(a.name) as MigrationRow),
						status: "recorded",
						note: "applied by wrangler; checksum recorded",
					});
			}

			let failed: string | undefined;
			for (const [index, p] of plan.pending.entries()) {
				ctx.progress(`applying ${index + 1}/${plan.pending.length}: ${p.migration.name}`);
				wroteMigrations = true;
				const result = await applyMigration(run, p.migration, bookmark);
				if (result.ok) {
					durations.push([p.migration.name, result.durationMs]);
					rows.set(p.migration.name, {
						name: p.migration.name,
						checksum: p.migration.checksum,
						status: "applied",
						durationMs: result.durationMs,
						attempts: result.attempts,
						...(result.note ? { note: result.note } : {}),
					});
					continue;
				}
				rows.set(p.migration.name, {
					name: p.migration.name,
					checksum: p.migration.checksum,
					status: "failed",
					note: result.error,
				});
				findings.push({
					code: result.ambiguous ? "APPLY_OUTCOME_UNKNOWN" : "APPLY_FAILED",
					severity: "error",
					file: p.migration.path,
					message: result.error,
				});
				failed = p.migration.name;
				for (const rest of plan.pending.slice(index + 1)) {
					rows.set(rest.migration.name, {
						name: rest.migration.name,
						checksum: rest.migration.checksum,
						status: "not-run",
					});
				}
				break;
			}

			if (!failed) {
				ctx.progress("validating the remote schema against the replay");
				const after = await readWithRetry(() => readRemoteState(client, database.migrationsTable), {
					signal: ctx.signal,
				});
				const expected = replaySchemaThrough(
					catalog,
					after.ledger.applied.map((r) => r.name),
					database.migrationsTable,
				);
				const differences = expected ? diffSchema(expected, after.schema) : [];
				if (differences.length) {
					findings.push({
						code: "VALIDATE_SCHEMA_MISMATCH",
						severity: "error",
						message: `after applying, the remote schema differs from the replay at the same head (- expected, + remote):\n${formatSchemaDifferences(differences)}`,
					});
				} else {
					data.validated = true;
				}
			}

			if (hasErrors(findings) && wroteMigrations) {
				if (args.autoRestore) {
					ctx.progress(`restoring Time Travel bookmark ${bookmark}`);
					await client.restore(bookmark);
					const back = await readWithRetry(
						() => readRemoteState(client, database.migrationsTable),
						{ signal: ctx.signal },
					);
					const confirmed = back.ledger.applied.at(-1)?.name === oldHead;
					data.restore = {
						...(data.restore as object),
						performed: true,
						confirmed,
						headAfterRestore: back.ledger.applied.at(-1)?.name ?? null,
					};
					if (confirmed) {
						status = "restored";
						for (const row of rows.values()) if (row.status === "applied") row.status = "not-run";
					} else {
						findings.push({
							code: "RESTORE_UNCONFIRMED",
							severity: "error",
							message: `restored bookmark ${bookmark}, but the ledger head is ${back.ledger.applied.at(-1)?.name ?? "(empty)"}, not ${oldHead ?? "(empty)"}; check the database now.`,
						});
					}
				} else {
					findings.push({
						code: "RESTORE_AVAILABLE",
						severity: "warning",
						message: `migrations applied before the failure stay applied. To put the database back as it was before this run:\n  ${restoreCommands(args.env, database, bookmark).join("\n  ")}`,
					});
				}
			} else if (!hasErrors(findings)) {
				status = "succeeded";
			}
			detail = failed ? `failed at ${failed}` : null;
			const applied = [...rows.values()].filter((r) => r.status === "applied").length;
			const summary = hasErrors(findings)
				? `${failed ? `failed at ${failed}` : "validation failed"}${status === "restored" ? "; database restored to the bookmark" : ""} (bookmark ${bookmark})`
				: `applied ${applied} migration(s)${plan.toRecord.length ? `, recorded ${plan.toRecord.length} applied by wrangler` : ""}; schema validated; bookmark ${bookmark}`;
			return finish(!hasErrors(findings), summary, [...rows.values()]);
		} catch (error) {
			// Whatever went wrong after the lock, the report must still carry the bookmark and the
			// way back: this is exactly when someone needs them.
			const restore = bookmark
				? `\nIf the database is in a bad state, put it back as it was before this run:\n  ${restoreCommands(args.env, database, bookmark).join("\n  ")}`
				: "";
			findings.push({
				code: "MIGRATE_ERROR",
				severity: "error",
				message: `${(error as Error).message}${wroteMigrations ? restore : ""}`,
			});
			detail = `error: ${(error as Error).message.split("\n")[0]}`;
			return finish(false, `stopped by an error${bookmark ? ` (bookmark ${bookmark})` : ""}`, [
				...rows.values(),
			]);
		} finally {
			// Durations, the run's final status and the lock release in one request; a restore may
			// have removed earlier rows, so these are upserts.
			const finalSql = [
				...(status === "restored" ? [] : durations.map(([name, ms]) => durationSql(name, ms))),
				runRecordSql({
					runId: run.runId,
					owner: run.owner,
					environment: args.env ?? null,
					gitSha: run.sha,
					bookmark: bookmark ?? null,
					status,
					detail,
				}),
				releaseLockSql(run.runId),
			].join("\n");
			try {
				await readWithRetry(() => client.query(finalSql, { write: true }), { attempts: 4 });
			} catch {
				try {
					await releaseLock(client, run.runId);
				} catch (error) {
					findings.push({
						code: "LOCK_RELEASE_FAILED",
						severity: "warning",
						message: `could not release the migration lock (${(error as Error).message}); it expires by itself within ${run.ttl} s.`,
					});
				}
			}
		}
	},
});

/** The remote schema must equal the replay through the applied migrations before anything is written. */
export function checkDrift(
	catalog: Catalog,
	plan: MigrationPlan,
	remote: Schema,
	table: string,
): Finding[] {
	const names = plan.applied.map((a) => a.name);
	const expected = replaySchemaThrough(catalog, names, table);
	if (!expected) return [];
	const differences = diffSchema(expected, remote);
	if (differences.length === 0) return [];
	const unrecorded = plan.toRecord.map((a) => a.name);
	return [
		{
			code: "PREFLIGHT_SCHEMA_DRIFT",
			severity: "error",
			message: `the remote schema differs from what the applied migrations produce (- migrations, + remote):\n${formatSchemaDifferences(differences)}\n${
				unrecorded.length
					? `Migrations applied by wrangler without a checksum (${unrecorded.join(", ")}) may have been edited since; `
					: ""
			}someone may have changed the database by hand. Make the files match the database, or fix the database, before migrating.`,
		},
	];
}
