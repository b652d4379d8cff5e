// Whole-process timings, as a user feels them: `workers-pipeline --help` against a bare `node`,
// and `migration-test` of 200 migrations against a bare node script that execs the same files
// with better-sqlite3 (exec-floor.mjs). Targets (issue 9, item 2) are printed, never asserted.
// The floor only execs; migration-test also lints every file, puts rows in the tables between
// migrations (--no-data shows that part) and compares the schema with the committed snapshot.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateMigrations } from "./generate.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(ROOT, "bin/workers-pipeline.js");
const FLOOR = path.join(ROOT, "test/bench/exec-floor.mjs");
const PHASES = path.join(ROOT, "test/bench/startup-phases.mjs");
const RUNS = 15;

const median = (values: number[]) =>
	[...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

function spawnMs(args: string[]): number {
	const t0 = performance.now();
	const child = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
	const ms = performance.now() - t0;
	if (child.status !== 0) throw new Error(`node ${args.join(" ")} failed: ${child.stderr}`);
	return ms;
}

/** Interleaved, so drift in machine load hits each candidate alike; a warm-up run first. */
function medians(candidates: string[][]): number[] {
	for (const args of candidates) spawnMs(args);
	const samples = candidates.map(() => [] as number[]);
	for (let i = 0; i < RUNS; i++) {
		for (const [index, args] of candidates.entries()) samples[index]?.push(spawnMs(args));
	}
	return samples.map(median);
}

const ms = (value: number) => `${value.toFixed(0)} ms`.padStart(7);

/** Median main-thread CPU ms of each phase of a cold migration-test (startup-phases.mjs), over RUNS processes. */
function phaseMedians(project: string): [string, number][] {
	const samples = new Map<string, number[]>();
	for (let i = 0; i < RUNS; i++) {
		const child = spawnSync(process.execPath, [PHASES, project], { encoding: "utf8" });
		if (child.status !== 0) throw new Error(`startup-phases.mjs failed: ${child.stderr}`);
		for (const [name, value] of Object.entries(
			JSON.parse(child.stdout) as Record<string, number>,
		)) {
			samples.get(name)?.push(value) ?? samples.set(name, [value]);
		}
	}
	return [...samples].map(([name, values]) => [name, median(values)]);
}

export async function benchStartup(): Promise<void> {
	const project = mkdtempSync(path.join(tmpdir(), "wp-bench-startup-"));
	try {
		generateMigrations(path.join(project, "migrations"), 200);
		writeFileSync(
			path.join(project, "wrangler.jsonc"),
			JSON.stringify({ name: "bench", d1_databases: [{ binding: "DB", database_id: "bench" }] }),
		);
		spawnMs([BIN, "migration-test", "--cwd", project, "--update-snapshot"]);
		const [help, bare, migrationTest, noData, floor] = medians([
			[BIN, "--help"],
			["-e", "0"],
			[BIN, "migration-test", "--cwd", project],
			[BIN, "migration-test", "--cwd", project, "--no-data"],
			[FLOOR, path.join(project, "migrations")],
		]) as [number, number, number, number, number];
		console.log(`whole processes, median of ${RUNS} interleaved runs (Node ${process.version})`);
		console.log(
			`  workers-pipeline --help:                        ${ms(help)}   (target <= 150 ms)`,
		);
		console.log(`  node -e 0 (bare start-up):                      ${ms(bare)}`);
		console.log(`  workers-pipeline migration-test, 200 migrations: ${ms(migrationTest)}`);
		// Not a target: what the data-carrying replay (on by default) adds to the run above.
		console.log(`    the same with --no-data:                     ${ms(noData)}`);
		console.log(`  node exec-floor.mjs, same files:                ${ms(floor)}`);
		console.log(
			`  migration-test / floor = ${(migrationTest / floor).toFixed(2)}x   (target <= 2x)`,
		);
		// Where a migration-test process spends its CPU (the report steps after the replay excluded).
		console.log(
			`migration-test phases, main-thread CPU (user + system), median of ${RUNS} cold processes`,
		);
		for (const [name, value] of phaseMedians(project)) {
			console.log(`  ${name.padEnd(46)} ${ms(value)}`);
		}
	} finally {
		rmSync(project, { recursive: true, force: true });
	}
}
