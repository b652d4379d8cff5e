import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
	listMigrationSets,
	resolveEnvironment,
	selectDatabase,
	snapshotPathFor,
} from "../config/load.ts";
import { withMigrationsDir } from "../config/paths.ts";
import type { D1Database, ProjectConfig } from "../config/schema.ts";
import type { Catalog } from "../migrations/catalog.ts";
import {
	acknowledgeProjectFindings,
	acknowledgesReplay,
	readCheckedCatalog,
} from "../migrations/check.ts";
import type { EmptyTable } from "../migrations/fill.ts";
// Types only: parity (wrangler, child processes) loads when --parity asks for it.
import type { ParityEngine, ParityResult } from "../migrations/parity.ts";
import {
	type DqsFallback,
	type ReplayFailure,
	type ReplayResult,
	replayMigrations,
	replayWithDuplicates,
} from "../migrations/replay.ts";
import {
	diffSchema,
	formatSchemaDifferences,
	parseSnapshot,
	renderSnapshot,
} from "../migrations/schema.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";

export interface MigrationTestArgs {
	project: ProjectConfig;
	env?: string;
	binding?: string;
	/** Overrides the binding's migrations_dir. */
	dir?: string;
	updateSnapshot?: boolean;
	parity?: boolean;
	/** False when `lint` already reports catalog and lint findings (in `ci`). */
	includeLint?: boolean;
	/** Where wrangler's parity verdicts are cached (keyed by the files and wrangler's version). */
	cacheDir?: string;
	/** False: ask wrangler again even for a cached set (the new verdict is still kept). */
	reuse?: boolean;
	/** False: skip the data-carrying replay (rows in every table between migrations). */
	data?: boolean;
	/** Parity judge: workerd's D1 through wrangler's Miniflare (default) or the wrangler CLI. */
	parityEngine?: ParityEngine;
}

export type MigrationStatus = "applied" | "failed" | "not-run" | "retired";

/** Picks the binding to test: the named env's, else the top level's, else the first env with one. */
export function pickDatabase(
	project: ProjectConfig,
	args: Pick<MigrationTestArgs, "env" | "binding" | "dir">,
): D1Database {
	let env = resolveEnvironment(project, args.env);
	if (args.env === undefined && env.databases.length === 0) {
		const withD1 = project.environments.find(
			(name) => resolveEnvironment(project, name).databases.length > 0,
		);
		if (withD1) env = resolveEnvironment(project, withD1);
	}
	const database = selectDatabase(project, env, args.binding);
	return args.dir === undefined ? database : withMigrationsDir(database, args.dir);
}

export type SnapshotStatus = "matches" | "updated" | "drift" | "missing" | "not-checked";

/** What a migration-test report carries (`data` of its step), as one typed value. */
export type MigrationTestData = {
	binding: string;
	migrationsDir: string;
	migrations: { name: string; checksum: string | null; status: MigrationStatus }[];
	snapshot: { file: string; status: SnapshotStatus };
	replay: { ok: boolean; durationMs: number; failure: ReplayFailure | undefined };
	data: {
		rows: number;
		failure: ReplayFailure | undefined;
		duplicateFailures: ReplayFailure[];
		/** Tables the data-carrying replay could write no row into, and why. */
		emptyTables: EmptyTable[];
	};
	parity:
		| {
				agree: boolean;
				summary: string;
				wrangler: {
					ok: boolean;
					applied: number;
					failedAt: string | undefined;
					message: string | undefined;
					durationMs: number;
					cached: boolean;
					engine: ParityEngine;
				};
		  }
		| undefined;
};

/** The replays of one catalog: the one reported, and the data-carrying one's failure when only it failed. */
interface ReplayPhase {
	replay: ReplayResult;
	dataFailure: ReplayFailure | undefined;
	/** Failures only duplicate values in non-unique columns cause (REPLAY_DATA_UNIQUE). */
	duplicateFailures: ReplayFailure[];
	rows: number;
	/** Tables the data-carrying replay left empty (its values met none of their CHECKs, no parent row). */
	emptyTables: EmptyTable[];
}

export const migrationTestStep = defineStep<MigrationTestArgs, MigrationTestData>({
	name: "migration-test",
	async run(ctx, args) {
		const started = performance.now();
		const { project } = args;
		const database = pickDatabase(project, args);
		const { catalog, raw: staticFindings } = readCheckedCatalog(project, database);
		const phase = runReplays(ctx, { catalog, database, data: args.data !== false });
		const { replay } = phase;
		// Replay findings; the project's acknowledgements are applied to them and the static ones at the end.
		const findings: Finding[] = formatReplayFindings(phase);
		const snapshot = runSnapshotCheck({
			project,
			database,
			catalog,
			replay,
			update: args.updateSnapshot === true,
		});
		findings.push(...snapshot.findings);
		const parity = args.parity
			? await runParity(ctx, { args, catalog, database, replay })
			: undefined;
		if (parity && !parity.agree) findings.push(formatParityFinding(parity, database));
		const reported = acknowledgeMigrationTest(project, database, {
			staticFindings,
			replayFindings: findings,
			includeLint: args.includeLint !== false,
		});
		return makeStepResult("migration-test", started, {
			ok: !hasErrors(reported),
			summary: formatSummary(replay, snapshot.status, parity),
			findings: reported,
			data: makeMigrationTestData({ catalog, database, phase, snapshot, parity }),
		});
	},
});

/** Replays the catalog on a fresh database (with rows, by default), and empty when that fails. */
function runReplays(
	ctx: StepContext,
	{ catalog, database, data }: { catalog: Catalog; database: D1Database; data: boolean },
): ReplayPhase {
	const total = catalog.migrations.length;
	ctx.progress(
		`replaying ${total} migration(s) from ${database.migrationsDir} on a fresh database`,
	);
	// With data on (the default) the replay puts a few rows in every table between migrations,
	// which shows what an empty database cannot (NOT NULL added, CHECK tightened); only when
	// that fails is the empty replay run too, to tell a data failure from a plain one.
	const replayOptions = {
		migrationsTable: database.migrationsTable,
		onMigration: (name: string, index: number) =>
			ctx.progress(`replay ${index + 1}/${total}: ${name}`),
	};
	const withData = data
		? replayWithDuplicates(catalog.migrations, { ...replayOptions, fillRows: DATA_ROWS })
		: undefined;
	const first = withData?.result ?? replayMigrations(catalog.migrations, replayOptions);
	const replay =
		data && first.failure
			? replayMigrations(catalog.migrations, { migrationsTable: database.migrationsTable })
			: first;
	const dataFailure =
		replay !== first && first.failure && replay.failure?.migration !== first.failure.migration
			? first.failure
			: undefined;
	const duplicateFailures = withData?.duplicateFailures ?? [];
	const emptyTables = withData?.result.emptyTables ?? [];
	return { replay, dataFailure, duplicateFailures, rows: data ? DATA_ROWS : 0, emptyTables };
}

/** Pure: the findings of the replays (failures, the double-quoted string fallback, cascading drops). */
export function formatReplayFindings({
	replay,
	dataFailure,
	duplicateFailures,
	emptyTables = [],
}: Pick<ReplayPhase, "replay" | "dataFailure" | "duplicateFailures"> &
	Partial<Pick<ReplayPhase, "emptyTables">>): Finding[] {
	const findings: Finding[] = duplicateFailures.map((f) => ({
		code: "REPLAY_DATA_UNIQUE",
		severity: "warning",
		file: f.path,
		line: f.line,
		message: `${f.message}${f.code ? ` (${f.code})` : ""} — in: ${truncate(f.statement, 160)}. This migration fails once two existing rows share a value in columns that were not unique (the data-carrying replay gave them duplicates, as real tables hold), so it fails on a production database with such rows. Remove the duplicates first in the same migration (e.g. DELETE the extra rows, or merge them), or check production for them and acknowledge this finding.`,
	}));
	const [firstEmpty] = emptyTables;
	if (firstEmpty) {
		const shown = emptyTables.slice(0, EMPTY_TABLES_SHOWN);
		const listed = shown.map((t) => `${t.table} (${t.reason})`).join(", ");
		const more =
			emptyTables.length > shown.length ? ` and ${emptyTables.length - shown.length} more` : "";
		findings.push({
			code: "REPLAY_DATA_EMPTY",
			severity: "warning",
			file: firstEmpty.path,
			message: `The data-carrying replay could write no row into ${listed}${more}, so later migrations met ${emptyTables.length === 1 ? "this table" : "these tables"} empty: what fails only on rows there (a NOT NULL, CHECK or UNIQUE added over existing data) was not tested. If production holds rows there, run \`workers-pipeline migrate --rehearse\` (the pending migrations on a copy of the remote rows) before applying, or acknowledge this finding; --json lists every table.`,
		});
	}
	if (dataFailure) {
		const f = dataFailure;
		findings.push({
			code: "REPLAY_DATA_FAILED",
			severity: "error",
			file: f.path,
			line: f.line,
			message: `${f.message}${f.code ? ` (${f.code})` : ""} — in: ${truncate(f.statement, 160)}. This migration works on an empty database but fails once the tables have rows (the data-carrying replay put ${DATA_ROWS} valid rows in each table after every earlier migration), as it would on a populated production database. Give new NOT NULL columns a DEFAULT, clean existing rows before tightening a CHECK or adding a UNIQUE index${/FOREIGN KEY/i.test(f.message) ? ", and delete or fix rows whose parent is missing before a rebuild adds a foreign key (D1 enforces foreign keys: PRAGMA foreign_keys = OFF does nothing there)" : ""} (or use --no-data to skip this replay).`,
		});
	}
	if (replay.failure) {
		const f = replay.failure;
		findings.push({
			code: "REPLAY_FAILED",
			severity: "error",
			file: f.path,
			line: f.line,
			message: `${f.message}${f.code ? ` (${f.code})` : ""} — in: ${truncate(f.statement, 160)}. Fix this migration (if it is already applied somewhere, add a new migration instead).`,
		});
	}

	for (const group of groupDqsFallbacks(replay.dqsFallbacks)) {
		const [first] = group;
		if (first === undefined) continue;
		const names = group.map((f) => f.identifier);
		const shown = names.slice(0, DQS_NAMES_SHOWN);
		const listed = `${shown.map((n) => `"${n}"`).join(", ")}${names.length > shown.length ? ` and ${names.length - shown.length} more` : ""}`;
		const where =
			first.trigger === undefined
				? `name${names.length === 1 ? "s" : ""} no column here`
				: `in trigger ${first.trigger} name${names.length === 1 ? "s" : ""} no column when this statement fires it`;
		const strings = shown.map((n) => `'${n}'`).join(", ");
		findings.push({
			code: "REPLAY_DQS_STRING",
			severity: "warning",
			file: first.path,
			line: first.line,
			message:
				names.length === 1
					? `${listed} ${where}, so D1 reads it as the string ${strings} (SQLite's double-quoted string fallback); this is almost always a bug (e.g. a copied column that does not exist yet). Use a real column, or write ${strings} if a string is meant.`
					: `${listed} ${where}, so D1 reads them as the strings ${strings}${names.length > shown.length ? ", …" : ""} (SQLite's double-quoted string fallback); this is almost always a bug (e.g. a copied column that does not exist yet, or a dump written with double-quoted strings). Use real columns, or single quotes where strings are meant.`,
		});
	}

	for (const cascade of replay.dropCascades) {
		const cascading = cascade.children.filter((c) => c.onDelete === "CASCADE");
		const list = cascade.children.map((c) => `${c.table} (ON DELETE ${c.onDelete})`).join(", ");
		findings.push({
			code: "REPLAY_DROP_CASCADE",
			severity: cascading.length ? "error" : "warning",
			file: cascade.path,
			line: cascade.line,
			message: `DROP TABLE ${cascade.table} ${cascading.length ? "deletes" : "changes"} the referencing rows of ${list} on a populated database: D1 ignores PRAGMA foreign_keys=OFF and defer_foreign_keys does not stop ON DELETE actions. Copy the child rows aside and restore them after the rebuild (or rebuild the children too); an empty-database replay cannot show this loss.`,
		});
	}
	return findings;
}

const EMPTY_TABLES_SHOWN = 5;

// One finding per statement (and trigger) that D1 reads double-quoted names in as strings: a seed
// file written with double quotes would otherwise give one warning per value.
const DQS_NAMES_SHOWN = 5;
function groupDqsFallbacks(fallbacks: readonly DqsFallback[]): DqsFallback[][] {
	const groups = new Map<string, DqsFallback[]>();
	for (const fallback of fallbacks) {
		const key = `${fallback.path}\0${fallback.line}\0${fallback.trigger ?? ""}`;
		const group = groups.get(key) ?? [];
		if (!group.some((f) => f.identifier === fallback.identifier)) group.push(fallback);
		groups.set(key, group);
	}
	return [...groups.values()];
}

/** Compares the replayed schema with the committed snapshot, or writes it with --update-snapshot. */
function runSnapshotCheck({
	project,
	database,
	catalog,
	replay,
	update,
}: {
	project: ProjectConfig;
	database: D1Database;
	catalog: Catalog;
	replay: ReplayResult;
	update: boolean;
}): { file: string; status: SnapshotStatus; findings: Finding[] } {
	const snapshotRel = snapshotPathFor(project, database);
	const snapshotFile = path.join(project.root, snapshotRel);
	const result = (status: SnapshotStatus, findings: Finding[] = []) => ({
		file: snapshotRel,
		status,
		findings,
	});
	if (!replay.ok) return result("not-checked");
	const head = catalog.migrations.at(-1)?.name ?? "(none)";
	const rendered = renderSnapshot(replay.schema, [
		`Schema of D1 binding "${database.binding}" after replaying ${database.migrationsPattern} (through ${head}).`,
		"Written by `workers-pipeline migration-test --update-snapshot`; review changes, never edit by hand.",
	]);
	if (update) {
		mkdirSync(path.dirname(snapshotFile), { recursive: true });
		writeFileSync(snapshotFile, rendered);
		return result("updated");
	}
	if (!existsSync(snapshotFile)) {
		// Nothing to snapshot yet (an empty migrations set): a missing file is not drift.
		if (replay.schema.objects.length === 0) return result("missing");
		return result("missing", [
			{
				code: "SNAPSHOT_MISSING",
				severity: "error",
				file: snapshotRel,
				message:
					"no schema snapshot is committed; run `workers-pipeline migration-test --update-snapshot`, review the file and commit it.",
			},
		]);
	}
	const committed = readFileSync(snapshotFile, "utf8");
	// Byte for byte what --update-snapshot would write now: nothing to parse or compare.
	if (committed === rendered) return result("matches");
	const differences = diffSchema(parseSnapshot(committed), replay.schema);
	if (differences.length === 0) return result("matches");
	return result("drift", [
		{
			code: "SNAPSHOT_DRIFT",
			severity: "error",
			file: snapshotRel,
			message: `the migrations produce a schema that differs from the snapshot (- snapshot, + migrations):\n${formatSchemaDifferences(differences)}\nIf the change is intended, run \`workers-pipeline migration-test --update-snapshot\` and commit the snapshot.`,
		},
	]);
}

/** Applies the same migrations with wrangler's local D1 and compares the outcomes. */
async function runParity(
	ctx: StepContext,
	{
		args,
		catalog,
		database,
		replay,
	}: { args: MigrationTestArgs; catalog: Catalog; database: D1Database; replay: ReplayResult },
): Promise<ParityResult> {
	ctx.progress(
		args.parityEngine === "wrangler"
			? "parity: applying the same migrations with wrangler d1 migrations apply --local"
			: "parity: applying the same migrations to workerd's D1 through wrangler's Miniflare, as wrangler d1 migrations apply --local does",
	);
	const { compareWithWrangler, runWranglerReplay } = await import("../migrations/parity.ts");
	const wrangler = await runWranglerReplay({
		root: args.project.root,
		catalog,
		database,
		env: ctx.env,
		signal: ctx.signal,
		cacheDir: args.cacheDir,
		reuse: args.reuse,
		engine: args.parityEngine,
	});
	return compareWithWrangler(replay, wrangler);
}

const formatParityFinding = (parity: ParityResult, database: D1Database): Finding => ({
	code: "PARITY_MISMATCH",
	severity: "error",
	file: database.migrationsDir,
	message: `${parity.summary}${parity.differences.length ? `\n${formatSchemaDifferences(parity.differences)}` : ""}`,
});

/** Pure: each catalog migration's outcome in the replay, then the retired ones. */
export function planMigrationStatuses(
	catalog: Pick<Catalog, "migrations" | "retired">,
	replay: Pick<ReplayResult, "applied" | "failure">,
): MigrationTestData["migrations"] {
	const appliedNames = new Set(replay.applied.map((a) => a.name));
	const statusOf = (name: string): MigrationStatus => {
		if (appliedNames.has(name)) return "applied";
		return replay.failure?.migration === name ? "failed" : "not-run";
	};
	return [
		...catalog.migrations.map((m) => ({
			name: m.name,
			checksum: m.checksum,
			status: statusOf(m.name),
		})),
		...catalog.retired.map((name) => ({
			name,
			checksum: null,
			status: "retired" as MigrationStatus,
		})),
	];
}

const formatSummary = (
	replay: ReplayResult,
	snapshot: SnapshotStatus,
	parity: ParityResult | undefined,
): string =>
	[
		replay.ok
			? `${replay.applied.length} migration(s) replayed in ${replay.durationMs.toFixed(0)} ms`
			: `replay failed at ${replay.failure?.migration}:${replay.failure?.line}`,
		`snapshot ${snapshot}`,
		parity
			? `parity: ${parity.summary}${parity.wrangler.cached ? " (cached verdict)" : ""}`
			: undefined,
	]
		.filter(Boolean)
		.join("; ");

function makeMigrationTestData({
	catalog,
	database,
	phase,
	snapshot,
	parity,
}: {
	catalog: Catalog;
	database: D1Database;
	phase: ReplayPhase;
	snapshot: { file: string; status: SnapshotStatus };
	parity: ParityResult | undefined;
}): MigrationTestData {
	const { replay } = phase;
	return {
		binding: database.binding,
		migrationsDir: database.migrationsDir,
		migrations: planMigrationStatuses(catalog, replay),
		snapshot: { file: snapshot.file, status: snapshot.status },
		replay: {
			ok: replay.ok,
			durationMs: Math.round(replay.durationMs),
			failure: replay.failure,
		},
		data: {
			rows: phase.rows,
			failure: phase.dataFailure,
			duplicateFailures: phase.duplicateFailures,
			emptyTables: phase.emptyTables,
		},
		parity: parity && {
			agree: parity.agree,
			summary: parity.summary,
			wrangler: {
				ok: parity.wrangler.ok,
				applied: parity.wrangler.applied.length,
				failedAt: parity.wrangler.failedAt,
				message: parity.wrangler.message,
				durationMs: parity.wrangler.durationMs,
				cached: parity.wrangler.cached ?? false,
				engine: parity.wrangler.engine ?? "miniflare",
			},
		},
	};
}

// Rows per table in the data-carrying replay (exported for the start-up bench's breakdown).
export const DATA_ROWS = 3;

const truncate = (text: string, max: number) => {
	const flat = text.replace(/\s+/g, " ").trim();
	return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/**
 * Acknowledgements over the static and replay findings together (so one for a replay code is
 * used when it matches); without lint (in `ci`), only the replay findings and the unused
 * acknowledgements of replay codes are reported, as lint reports the rest.
 */
function acknowledgeMigrationTest(
	project: ProjectConfig,
	database: D1Database,
	{
		staticFindings,
		replayFindings,
		includeLint,
	}: { staticFindings: Finding[]; replayFindings: Finding[]; includeLint: boolean },
): Finding[] {
	const { findings, unused } = acknowledgeProjectFindings(
		project,
		[...staticFindings, ...replayFindings],
		{ dirs: [database.migrationsDir], reportsUnused: includeLint ? undefined : acknowledgesReplay },
	);
	return [...(includeLint ? findings : findings.slice(staticFindings.length)), ...unused];
}

/**
 * One migration test per distinct migrations set (several D1 bindings, or per-environment
 * directories), named by binding; one plain `migration-test` when there is at most one. Pure.
 */
export function planMigrationTests(
	project: ProjectConfig,
	only: { env?: string } = {},
): { name: string; env?: string; binding?: string }[] {
	// With --env: that environment's bindings (each a set), as `migrate --env` would meet them.
	const sets =
		only.env === undefined
			? listMigrationSets(project)
			: resolveEnvironment(project, only.env).databases.map((database) => ({
					env: only.env,
					database,
				}));
	if (sets.length <= 1) return [{ name: "migration-test", ...(only.env ? { env: only.env } : {}) }];
	const bindings = sets.map((s) => s.database.binding);
	return sets.map(({ env, database: { binding } }) => ({
		// The same binding name in two environments with different sets: say which environment.
		name: `migration-test ${binding}${bindings.indexOf(binding) !== bindings.lastIndexOf(binding) ? `@${env ?? "top"}` : ""}`,
		env,
		binding,
	}));
}
