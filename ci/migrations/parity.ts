import { createHash, randomUUID } from "node:crypto";
import {
	cpSync,
	type Dirent,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { resolveWranglerBin, runWrangler, wranglerVersion } from "../cloudflare/wrangler.ts";
import { patternWithinDir } from "../config/paths.ts";
import type { D1Database } from "../config/schema.ts";
import type { Catalog } from "./catalog.ts";
import { quoteIdentifier } from "./literals.ts";
import type { ReplayResult } from "./replay.ts";
import { ledgerTableSql, readSchema, wranglerMigrationQuery } from "./replay.ts";
import {
	diffSchema,
	makeSchema,
	SCHEMA_QUERY,
	type Schema,
	type SchemaDifference,
	type SchemaRow,
} from "./schema.ts";
import { splitStatements } from "./sql.ts";

/** Who gave the parity verdict: workerd's D1 through wrangler's own Miniflare, or the wrangler CLI. */
export type ParityEngine = "miniflare" | "wrangler";

export interface WranglerReplay {
	ok: boolean;
	applied: string[];
	/** The first migration wrangler did not record, when it failed. */
	failedAt: string | undefined;
	message: string | undefined;
	schema: Schema;
	durationMs: number;
	exitCode: number | null;
	/** True when this verdict came from the cache of an identical earlier run. */
	cached?: boolean;
	engine?: ParityEngine;
}

export interface ParityResult {
	agree: boolean;
	/** One line saying what each side concluded. */
	summary: string;
	wrangler: WranglerReplay;
	differences: SchemaDifference[];
}

export interface RunWranglerReplayOptions {
	root: string;
	catalog: Catalog;
	database: D1Database;
	env: Readonly<Record<string, string | undefined>>;
	signal?: AbortSignal;
	onOutput?: (chunk: string) => void;
	/** Where verdicts are kept between runs; no caching when unset. */
	cacheDir?: string;
	/** False: run wrangler even when a verdict is cached, and keep the new one. */
	reuse?: boolean;
	/** Default "miniflare": the same workerd D1 as `wrangler d1 migrations apply --local`, in-process. */
	engine?: ParityEngine;
}

/**
 * Applies the same files with real `wrangler d1 migrations apply --local` in a throw-away project
 * and state dir, then reads the resulting SQLite file directly.
 */
export async function runWranglerReplay(
	options: RunWranglerReplayOptions,
): Promise<WranglerReplay> {
	const { catalog, database } = options;
	// wrangler's verdict depends only on the files, the ledger settings and wrangler's version:
	// keep it, so an unchanged set is not re-applied with wrangler on every run.
	const engine = options.engine ?? "miniflare";
	const key = parityCacheKey(catalog, database, `${engine} ${wranglerVersion(options.root)}`);
	const cacheFile = options.cacheDir
		? path.join(options.cacheDir, `parity-${key}.json`)
		: undefined;
	if (cacheFile && options.reuse !== false && existsSync(cacheFile)) {
		try {
			return {
				...(JSON.parse(readFileSync(cacheFile, "utf8")) as WranglerReplay),
				cached: true,
				engine,
			};
		} catch {
			// A damaged entry: run wrangler again.
		}
	}
	const fresh =
		engine === "wrangler" ? await applyWithWrangler(options) : await applyWithMiniflare(options);
	if (cacheFile && fresh.exitCode !== null) {
		mkdirSync(path.dirname(cacheFile), { recursive: true });
		writeFileSync(cacheFile, JSON.stringify(fresh));
	}
	return fresh;
}

/** Everything wrangler's verdict depends on. */
export function parityCacheKey(catalog: Catalog, database: D1Database, version: string): string {
	const hash = createHash("sha256").update(
		`wrangler ${version}\n${database.migrationsTable}\n${database.migrationsPattern}\n`,
	);
	for (const m of catalog.migrations) hash.update(`${m.name} ${m.checksum}\n`);
	return hash.digest("hex").slice(0, 32);
}

async function applyWithWrangler(options: RunWranglerReplayOptions): Promise<WranglerReplay> {
	const { catalog, database } = options;
	const work = mkdtempSync(path.join(tmpdir(), "wp-parity-"));
	try {
		const migrationsDir = path.join(work, "migrations");
		mkdirSync(migrationsDir);
		for (const migration of catalog.migrations) {
			const target = path.join(migrationsDir, ...migration.name.split("/"));
			mkdirSync(path.dirname(target), { recursive: true });
			cpSync(path.resolve(options.root, migration.path), target);
		}
		const relativePattern = patternWithinDir(database);
		const config = {
			name: "workers-pipeline-parity",
			compatibility_date: "2025-01-01",
			d1_databases: [
				{
					binding: "DB",
					database_name: "parity",
					database_id: randomUUID(),
					migrations_dir: "migrations",
					migrations_table: database.migrationsTable,
					migrations_pattern: `migrations/${relativePattern}`,
				},
			],
		};
		writeFileSync(path.join(work, "wrangler.jsonc"), JSON.stringify(config, null, "\t"));
		const state = path.join(work, "state");
		const result = await runWrangler({
			args: [
				"d1",
				"migrations",
				"apply",
				"DB",
				"--local",
				"--persist-to",
				state,
				"--config",
				"wrangler.jsonc",
			],
			cwd: work,
			// The project's own wrangler, the one its cache key names (parityCacheKey).
			projectRoot: options.root,
			env: {
				...options.env,
				XDG_CONFIG_HOME: path.join(work, "xdg"),
				WRANGLER_LOG_PATH: path.join(work, "logs"),
			},
			timeoutMs: 10 * 60_000,
			signal: options.signal,
			onOutput: options.onOutput,
		});
		const sqliteFile = findSqliteFile(path.join(state, "v3", "d1"));
		let applied: string[] = [];
		let schema: Schema = { objects: [] };
		if (sqliteFile) {
			const db = new Database(sqliteFile, { readonly: true, fileMustExist: true });
			try {
				const table = quoteIdentifier(database.migrationsTable);
				applied = (
					db.prepare(`SELECT name FROM ${table} ORDER BY id`).all() as { name: string }[]
				).map((r) => r.name);
				schema = readSchema(db, [database.migrationsTable]);
			} catch {
				// No ledger table: wrangler stopped before creating it.
			} finally {
				db.close();
			}
		}
		const ok = !result.failed && applied.length === catalog.migrations.length;
		const appliedSet = new Set(applied);
		const failedAt = ok ? undefined : catalog.migrations.find((m) => !appliedSet.has(m.name))?.name;
		return {
			ok,
			applied,
			failedAt,
			message: ok
				? undefined
				: (extractWranglerError(result.stdout + result.stderr) ?? `exit code ${result.exitCode}`),
			schema,
			durationMs: result.durationMs,
			exitCode: result.exitCode,
			engine: "wrangler",
		};
	} finally {
		rmSync(work, { recursive: true, force: true });
	}
}

// The slice of Miniflare's API the parity run uses (miniflare's dist/src/index.d.ts).
interface MiniflareD1 {
	prepare(sql: string): unknown;
	batch(statements: unknown[]): Promise<unknown[]>;
}
interface MiniflareModule {
	Miniflare: new (
		options: unknown,
	) => { getD1Database(binding: string): Promise<MiniflareD1>; dispose(): Promise<void> };
	convertV4MiniflareOptions(options: unknown): unknown;
}

/** The miniflare that the project's wrangler itself depends on, so the engine is wrangler's own. */
async function importWranglersMiniflare(root: string): Promise<MiniflareModule> {
	const wranglerRequire = createRequire(resolveWranglerBin(root));
	return (await import(
		pathToFileURL(wranglerRequire.resolve("miniflare")).href
	)) as MiniflareModule;
}

/**
 * Applies the files as `wrangler d1 migrations apply --local` does (wrangler d1/migrations/apply.ts
 * and d1/execute.ts executeLocally(): the ledger DDL, then per file the file plus the ledger INSERT,
 * split into statements and sent as one D1 batch) to an in-memory D1 of wrangler's own Miniflare,
 * started once for the whole set instead of once per file.
 */
async function applyWithMiniflare(options: RunWranglerReplayOptions): Promise<WranglerReplay> {
	const started = performance.now();
	const { catalog, database } = options;
	const table = database.migrationsTable;
	const { Miniflare, convertV4MiniflareOptions } = await importWranglersMiniflare(options.root);
	const mf = new Miniflare(
		convertV4MiniflareOptions({ modules: true, script: "", d1Databases: { DB: "parity" } }),
	);
	try {
		const db = await mf.getD1Database("DB");
		const run = async (sql: string) => {
			const statements = splitStatements(sql).map((s) => s.text);
			if (statements.length) await db.batch(statements.map((text) => db.prepare(text)));
		};
		await run(ledgerTableSql(table));
		let failedAt: string | undefined;
		let message: string | undefined;
		for (const migration of catalog.migrations) {
			if (options.signal?.aborted) throw options.signal.reason;
			try {
				await run(wranglerMigrationQuery(migration, table));
			} catch (error) {
				const cause = ((error as { cause?: unknown }).cause ?? error) as { message?: string };
				failedAt = migration.name;
				message = cause.message ?? String(cause);
				break;
			}
		}
		const quoted = `"${table.replace(/"/g, '""')}"`;
		const [ledger, objects] = (await db.batch([
			db.prepare(`SELECT name FROM ${quoted} ORDER BY id`),
			db.prepare(SCHEMA_QUERY),
		])) as { results: unknown[] }[];
		const applied = ((ledger?.results ?? []) as { name: string }[]).map((r) => r.name);
		const ok = failedAt === undefined && applied.length === catalog.migrations.length;
		return {
			ok,
			applied,
			failedAt: ok
				? undefined
				: (failedAt ?? catalog.migrations.find((m) => !applied.includes(m.name))?.name),
			message,
			schema: makeSchema((objects?.results ?? []) as SchemaRow[], [table]),
			durationMs: performance.now() - started,
			exitCode: ok ? 0 : 1,
			engine: "miniflare",
		};
	} finally {
		await mf.dispose();
	}
}

function findSqliteFile(dir: string): string | undefined {
	let entries: Dirent[];
	try {
		entries = readdirSync(dir, { withFileTypes: true, recursive: true });
	} catch {
		return undefined;
	}
	const file = entries.find(
		(e) => e.isFile() && e.name.endsWith(".sqlite") && e.name !== "metadata.sqlite",
	);
	return file ? path.join(file.parentPath, file.name) : undefined;
}

/** wrangler prints `✘ [ERROR] <message>`; keep the first such line. */
export function extractWranglerError(output: string): string | undefined {
	const line = output.split("\n").find((l) => l.includes("[ERROR]"));
	return line?.replace(/^.*\[ERROR\]\s*/, "").trim();
}

/** Same verdict: both clean with equal schemas, or both failing at the same file. */
export function compareWithWrangler(ours: ReplayResult, wrangler: WranglerReplay): ParityResult {
	const oursText = ours.ok ? "clean" : `fails at ${ours.failure?.migration}`;
	const theirsText = wrangler.ok
		? "clean"
		: `fails at ${wrangler.failedAt ?? "(before any migration)"}`;
	let differences: SchemaDifference[] = [];
	let agree: boolean;
	if (ours.ok && wrangler.ok) {
		differences = diffSchema(ours.schema, wrangler.schema);
		agree = differences.length === 0;
	} else {
		agree = !ours.ok && !wrangler.ok && ours.failure?.migration === wrangler.failedAt;
	}
	const summary = agree
		? `wrangler agrees: ${oursText}`
		: differences.length
			? `schemas differ between our replay and wrangler (${differences.length} object(s))`
			: `verdicts differ: ours ${oursText}, wrangler ${theirsText}${wrangler.message ? ` (${wrangler.message})` : ""}`;
	return { agree, summary, wrangler, differences };
}
