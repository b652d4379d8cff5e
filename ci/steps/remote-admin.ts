import { DEFAULT_LOCK_TIMEOUT_SECONDS, DEFAULT_LOCK_TTL_SECONDS } from "../constants.ts";
import { UserError } from "../errors.ts";
import { describeOwner, readGitSha } from "../git.ts";
import { readCheckedCatalog } from "../migrations/check.ts";
import { checkDrift, planRows, readRetiredMigrations } from "../migrations/drift.ts";
import { fenceSql, recordSql } from "../migrations/ledger.ts";
import { quoteIdentifier, sqlString } from "../migrations/literals.ts";
import { planMigrations } from "../migrations/plan.ts";
import {
	LockHeldError,
	type MigrationLockOptions,
	readRemoteState,
	readWithRetry,
	withMigrationLock,
} from "../migrations/remote.ts";
import { replayMigrations } from "../migrations/replay.ts";
import {
	diffSchema,
	formatSchemaDifferences,
	type SchemaDifference,
} from "../migrations/schema.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import { newRunId, openRemote, type RemoteArgs, restoreCommands } from "./_remote.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";

/** The lock options of an admin command (baseline, restore): default lease, the user's timeout. */
const adminLock = (
	ctx: StepContext,
	migrationsTable: string,
	lockTimeoutSeconds: number | undefined,
): MigrationLockOptions => ({
	migrationsTable,
	runId: newRunId(),
	owner: describeOwner(ctx.env),
	ttlSeconds: DEFAULT_LOCK_TTL_SECONDS,
	timeoutMs: (lockTimeoutSeconds ?? DEFAULT_LOCK_TIMEOUT_SECONDS) * 1000,
	signal: ctx.signal,
});

/** `plan`: what is applied (with checksum status), what is pending, what is wrong. Reads only. */
export const planStep = defineStep<RemoteArgs & { allowOutOfOrder?: boolean }>({
	name: "plan",
	async run(ctx, args) {
		const started = performance.now();
		const { client, database } = openRemote(ctx, args);
		const { catalog, findings } = readCheckedCatalog(args.project, database);
		const state = await readWithRetry(() => readRemoteState(client, database.migrationsTable), {
			signal: ctx.signal,
		});
		const plan = planMigrations(catalog, state.ledger, { allowOutOfOrder: args.allowOutOfOrder });
		findings.push(
			...plan.findings,
			...checkDrift(catalog, plan, state.schema, {
				table: database.migrationsTable,
				retired: readRetiredMigrations(args.project.root, catalog),
			}),
		);
		const verified = plan.applied.filter((a) => a.status === "verified").length;
		return makeStepResult("plan", started, {
			ok: !hasErrors(findings),
			summary: `${plan.applied.length} applied (${verified} verified, ${plan.toRecord.length} without checksum yet), ${plan.pending.length} pending${plan.head ? `; head ${plan.head}` : ""}`,
			findings,
			data: {
				environment: args.env,
				database: {
					binding: database.binding,
					name: database.databaseName ?? null,
					id: client.databaseId ?? null,
				},
				head: plan.head ?? null,
				migrations: planRows(plan),
				requests: client.requestCount,
			},
		});
	},
});

/** Objects the files create that the remote database lacks or has differently. */
function missingFromRemote(differences: readonly SchemaDifference[]): SchemaDifference[] {
	return differences.filter((d) => d.kind !== "added");
}

/** `baseline`: adopt an existing database by recording 0001..NNNN as applied, after checking its schema. */
export const baselineStep = defineStep<
	RemoteArgs & { through: string; lockTimeoutSeconds?: number }
>({
	name: "baseline",
	async run(ctx, args) {
		const started = performance.now();
		const through = Number.parseInt(args.through, 10);
		if (!/^\d+$/.test(args.through)) {
			throw new UserError(
				`--through expects a migration number such as 0007, not "${args.through}".`,
			);
		}
		const { client, database } = openRemote(ctx, args);
		const { catalog, findings } = readCheckedCatalog(args.project, database);
		const adopted = catalog.migrations.filter((m) => m.number !== undefined && m.number <= through);
		if (adopted.length === 0) {
			throw new UserError(
				`no migration is numbered ${args.through} or lower in ${database.migrationsDir}.`,
			);
		}
		const replay = replayMigrations(adopted, { migrationsTable: database.migrationsTable });
		if (replay.failure) {
			findings.push({
				code: "REPLAY_FAILED",
				severity: "error",
				file: replay.failure.path,
				line: replay.failure.line,
				message: replay.failure.message,
			});
		}
		const state = await readWithRetry(() => readRemoteState(client, database.migrationsTable), {
			signal: ctx.signal,
		});
		const missing = missingFromRemote(diffSchema(replay.schema, state.schema));
		if (missing.length) {
			findings.push({
				code: "BASELINE_SCHEMA_MISSING",
				severity: "error",
				message: `the database does not contain what ${adopted.at(-1)?.name} and earlier create (- expected from files, + remote):\n${formatSchemaDifferences(missing)}\nBaseline only a database those migrations really produced.`,
			});
		}
		if (hasErrors(findings)) {
			return makeStepResult("baseline", started, {
				ok: false,
				summary: "baseline refused: nothing was written",
				findings,
			});
		}
		const lockOptions = adminLock(ctx, database.migrationsTable, args.lockTimeoutSeconds);
		const { runId, owner, ttlSeconds: ttl } = lockOptions;
		try {
			const { value } = await withMigrationLock(client, lockOptions, async () => {
				const bookmark = await readWithRetry(() => client.getBookmark(), { signal: ctx.signal });
				const already = new Set(state.ledger.applied.map((r) => r.name));
				const table = quoteIdentifier(database.migrationsTable);
				const sha = readGitSha(args.project.root, ctx.env);
				const statements = [fenceSql(runId, ttl)];
				for (const m of adopted) {
					if (!already.has(m.name))
						statements.push(`INSERT INTO ${table} (name) values (${sqlString(m.name)});`);
					if (!state.ledger.audit.has(m.name)) {
						statements.push(
							recordSql(
								database.migrationsTable,
								{
									name: m.name,
									checksum: m.checksum,
									gitSha: sha,
									appliedBy: owner,
									durationMs: null,
									bookmark,
									runId,
									recordedBy: "baseline",
								},
								{ wrangler: false },
							),
						);
					}
				}
				await client.query(statements.join("\n"), { write: true });
				return { bookmark, already };
			});
			const { bookmark, already } = value;
			return makeStepResult("baseline", started, {
				ok: true,
				summary: `recorded ${adopted.length} migration(s) through ${adopted.at(-1)?.name} as applied; bookmark before: ${bookmark}`,
				findings,
				data: {
					environment: args.env,
					bookmark,
					restore: { commands: restoreCommands(args.env, database, bookmark) },
					migrations: adopted.map((m) => ({
						name: m.name,
						checksum: m.checksum,
						status: already.has(m.name) ? "verified" : "recorded",
					})),
				},
			});
		} catch (error) {
			if (!(error instanceof LockHeldError)) throw error;
			findings.push({ code: "LOCK_HELD", severity: "error", message: error.message });
			return makeStepResult("baseline", started, {
				ok: false,
				summary: "lock held: nothing was written",
				findings,
			});
		}
	},
});

/** `restore`: D1 Time Travel restore under the lock, then the ledger head. */
export const restoreStep = defineStep<
	RemoteArgs & { bookmark: string; lockTimeoutSeconds?: number }
>({
	name: "restore",
	async run(ctx, args) {
		const started = performance.now();
		const { client, database } = openRemote(ctx, args);
		const findings: Finding[] = [];
		try {
			const { value } = await withMigrationLock(
				client,
				adminLock(ctx, database.migrationsTable, args.lockTimeoutSeconds),
				async (lock) => {
					ctx.progress(`restoring bookmark ${args.bookmark}`);
					// A refused restore (bad bookmark, no access) throws: the lock is still ours and is
					// released as usual. After a restore the lock row is the bookmark's (maybe the row
					// of the run that took it); we held the lock until the restore, so clear it.
					const result = await client.restore(args.bookmark);
					lock.clearAll = true;
					const state = await readWithRetry(
						() => readRemoteState(client, database.migrationsTable),
						{ signal: ctx.signal },
					);
					return { result, head: state.ledger.applied.at(-1)?.name ?? null };
				},
			);
			const { result, head } = value;
			return makeStepResult("restore", started, {
				ok: true,
				summary: `restored ${database.databaseName ?? client.databaseId} to bookmark ${args.bookmark}; ledger head is now ${head ?? "(empty)"}`,
				findings,
				data: {
					environment: args.env,
					bookmark: args.bookmark,
					previousBookmark: result.previousBookmark ?? null,
					head,
				},
			});
		} catch (error) {
			if (!(error instanceof LockHeldError)) throw error;
			findings.push({
				code: "LOCK_HELD",
				severity: "error",
				message: `${error.message} A migration may be running: restoring now would race it.`,
			});
			return makeStepResult("restore", started, {
				ok: false,
				summary: "lock held: nothing was restored",
				findings,
			});
		}
	},
});
