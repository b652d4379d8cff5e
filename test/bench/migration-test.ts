// migration-test replay vs wrangler's local apply vs the raw better-sqlite3 floor.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { loadProjectConfig, resolveEnvironment } from "../../ci/config/load.ts";
import { parseCatalog, readCatalog } from "../../ci/migrations/catalog.ts";
import { runWranglerReplay } from "../../ci/migrations/parity.ts";
import { replayMigrations } from "../../ci/migrations/replay.ts";
import { generateMigrations } from "./generate.ts";

const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)] as number;
};

/** Runs the candidates interleaved, so drift in machine load hits each alike; medians per candidate. */
function timeInterleaved(candidates: (() => void)[], runs: number): number[] {
	for (const fn of candidates) fn(); // warm-up
	const samples = candidates.map(() => [] as number[]);
	for (let i = 0; i < runs; i++) {
		for (const [index, fn] of candidates.entries()) {
			const t0 = performance.now();
			fn();
			samples[index]?.push(performance.now() - t0);
		}
	}
	return samples.map(median);
}

const RUNS = 21;

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

export async function benchMigrationTest(): Promise<void> {
	const project = mkdtempSync(path.join(tmpdir(), "wp-bench-"));
	try {
		const count = 200;
		generateMigrations(path.join(project, "migrations"), count);
		writeFileSync(
			path.join(project, "wrangler.jsonc"),
			JSON.stringify({ name: "bench", d1_databases: [{ binding: "DB", database_id: "bench" }] }),
		);
		const config = loadProjectConfig({ cwd: project });
		const database = resolveEnvironment(config, undefined).databases[0];
		if (!database) throw new Error("no database");

		// Ours: read + order + checksum the files, replay each migration atomically, read the schema.
		const oursRun = () => {
			const catalog = parseCatalog(readCatalog({ root: project, database }));
			const result = replayMigrations(catalog.migrations, {
				migrationsTable: database.migrationsTable,
			});
			if (!result.ok) throw new Error(`replay failed: ${JSON.stringify(result.failure)}`);
		};

		// migration-test's default: the same replay carrying a few rows per table between migrations.
		const dataRun = () => {
			const catalog = parseCatalog(readCatalog({ root: project, database }));
			const result = replayMigrations(catalog.migrations, {
				migrationsTable: database.migrationsTable,
				fillRows: 3,
			});
			if (!result.ok) throw new Error(`data replay failed: ${JSON.stringify(result.failure)}`);
		};

		// The floor: raw better-sqlite3 exec of every file in one transaction.
		const dir = path.join(project, "migrations");
		const floorRun = () => {
			const files = readdirSync(dir).sort();
			const db = new Database(":memory:");
			db.pragma("foreign_keys = ON");
			db.exec("BEGIN");
			for (const file of files) db.exec(readFileSync(path.join(dir, file), "utf8"));
			db.exec("COMMIT");
			db.close();
		};
		const [ours, withData, floor] = timeInterleaved([oursRun, dataRun, floorRun], RUNS) as [
			number,
			number,
			number,
		];

		// What users run today: wrangler d1 migrations apply --local (one run: it takes seconds),
		// and our parity check on the same workerd D1 through wrangler's Miniflare (median of 3).
		const catalog = parseCatalog(readCatalog({ root: project, database }));
		const wrangler = await runWranglerReplay({
			root: project,
			catalog,
			database,
			env: process.env,
			engine: "wrangler",
		});
		if (!wrangler.ok) throw new Error(`wrangler failed: ${wrangler.message}`);
		const paritySamples: number[] = [];
		for (let i = 0; i < 3; i++) {
			const t0 = performance.now();
			const verdict = await runWranglerReplay({
				root: project,
				catalog,
				database,
				env: process.env,
			});
			paritySamples.push(performance.now() - t0);
			if (!verdict.ok) throw new Error(`parity failed: ${verdict.message}`);
		}
		const parity = median(paritySamples);

		console.log(
			`migration-test replay of ${count} generated migrations (median of ${RUNS} interleaved runs; wrangler 1 run)`,
		);
		console.log(`  ours (catalog + per-migration transactions + schema):  ${fmt(ours)}`);
		console.log(
			`  wrangler d1 migrations apply --local:                  ${fmt(wrangler.durationMs)}`,
		);
		console.log(`  ours with data (3 rows per table, the default):        ${fmt(withData)}`);
		console.log(`  parity on workerd's D1 via Miniflare (median of 3):    ${fmt(parity)}`);
		console.log(`  raw better-sqlite3 exec, one transaction (floor):      ${fmt(floor)}`);
		console.log(
			`  wrangler / parity = ${(wrangler.durationMs / parity).toFixed(1)}x   (target >= 15x)`,
		);
		console.log(
			`  wrangler / ours = ${(wrangler.durationMs / ours).toFixed(0)}x   (target >= 30x)`,
		);
		console.log(`  ours / floor    = ${(ours / floor).toFixed(2)}x  (target <= 1.5x)`);
	} finally {
		rmSync(project, { recursive: true, force: true });
	}
}
