import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../../../ci/cli/main.ts";
import { loadProjectConfig } from "../../../ci/config/load.ts";
import { migrationTestStep } from "../../../ci/steps/migration-test.ts";

// Real D1 migration histories from public projects (see shared/corpus/d1/SOURCES.md): our replay
// and real `wrangler d1 migrations apply --local` must reach the same verdict on each.
const repoRoot = path.resolve(import.meta.dirname, "../../..");
// The corpus lives beside the repository (shared/ next to the clone, as in CI), or where
// WORKERS_PIPELINE_CORPUS points.
const corpusDir = path.resolve(
	repoRoot,
	process.env.WORKERS_PIPELINE_CORPUS ?? "../shared/corpus/d1",
);
// Under CI the corpus must be there; on a machine without it the corpus cases are skipped, saying so.
const corpusRequired = Boolean(process.env.CI);
const sets = existsSync(corpusDir)
	? readdirSync(corpusDir, { withFileTypes: true })
			.filter((e) => e.isDirectory())
			.map((e) => e.name)
			.sort()
	: [];

/**
 * Sets where our verdict rightly differs from wrangler's, with the reason. Empty: on every set
 * in the corpus we agree. (The double-quoted-string fallback some sets rely on is reproduced,
 * and reported as a warning, rather than listed here.)
 */
const KNOWN_DIFFERENCES: Record<string, string> = {};

interface Row {
	set: string;
	files: number;
	ours: string;
	wrangler: string;
	agree: boolean;
	findings: string;
}

const rows: Row[] = [];
const temps: string[] = [];

afterAll(() => {
	for (const dir of temps) rmSync(dir, { recursive: true, force: true });
	if (rows.length) {
		console.log(
			[
				"corpus parity (ours vs wrangler d1 migrations apply --local) and lint findings:",
				...rows.map(
					(r) =>
						`  ${r.set.padEnd(58)} ${String(r.files).padStart(3)} files  ours: ${r.ours.padEnd(40)} wrangler: ${r.wrangler.padEnd(40)} ${r.agree ? "AGREE" : "DIFFER"}\n      findings: ${r.findings || "none"}`,
				),
			].join("\n"),
		);
	}
});

describe("migration-test --parity on the D1 corpus", () => {
	it("should find the corpus beside the repository", () => {
		if (sets.length === 0 && !corpusRequired) {
			console.warn(
				`corpus parity skipped: no corpus at ${corpusDir} (put shared/ beside the clone or set WORKERS_PIPELINE_CORPUS; under CI it is required)`,
			);
			return;
		}
		expect(sets.length, `no corpus at ${corpusDir}`).toBeGreaterThanOrEqual(15);
	});

	it("should agree with wrangler on the example app's own migrations, snapshot included", {
		timeout: 300_000,
	}, async () => {
		const result = await migrationTestStep.run(
			{ cwd: repoRoot, env: process.env, progress: () => {} },
			{ project: loadProjectConfig({ cwd: repoRoot }), parity: true },
		);
		expect(result.findings).toEqual([]);
		expect(result.ok).toBe(true);
		expect((result.data as { parity: { agree: boolean } }).parity.agree).toBe(true);
	});

	it("should reuse wrangler's verdict with --cache only while the files are unchanged", {
		timeout: 300_000,
	}, async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-parity-cache-"));
		temps.push(dir);
		cpSync(path.join(repoRoot, "migrations"), path.join(dir, "migrations"), { recursive: true });
		cpSync(path.join(repoRoot, "migrations.schema.sql"), path.join(dir, "migrations.schema.sql"));
		writeFileSync(
			path.join(dir, "wrangler.jsonc"),
			JSON.stringify({ name: "cache", d1_databases: [{ binding: "DB", database_id: "x" }] }),
		);
		const run = async () => {
			let out = "";
			const code = await runCli(["migration-test", "--parity", "--cache"], {
				stdout: (t) => {
					out += t;
				},
				stderr: () => {},
				env: process.env,
				cwd: dir,
				isTTY: false,
			});
			return { code, out };
		};
		const first = await run();
		expect(first.code).toBe(0);
		expect(first.out).toContain("wrangler agrees: clean");
		expect(first.out).not.toContain("cached verdict");
		const second = await run();
		expect(second.out).toContain("wrangler agrees: clean (cached verdict)");
		// A changed file is a new question for wrangler: here one that fails on both sides.
		writeFileSync(
			path.join(dir, "migrations", "0009_broken.sql"),
			"CREATE INDEX x ON missing_table (id);\n",
		);
		const third = await run();
		expect(third.code).toBe(1);
		expect(third.out).toContain("wrangler agrees: fails at 0009_broken.sql");
		expect(third.out).not.toContain("cached verdict");
	});

	it.each(sets)("should reach wrangler's verdict on %s", { timeout: 300_000 }, async (set) => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-corpus-"));
		temps.push(dir);
		cpSync(path.join(corpusDir, set), path.join(dir, "migrations"), { recursive: true });
		const nested = readdirSync(path.join(dir, "migrations"), { withFileTypes: true }).some((e) =>
			e.isDirectory(),
		);
		writeFileSync(
			path.join(dir, "wrangler.jsonc"),
			JSON.stringify({
				name: "corpus",
				d1_databases: [
					{
						binding: "DB",
						database_id: "00000000-0000-4000-8000-00000000c0de",
						migrations_dir: "migrations",
						// drizzle-kit's directory layout, selected the way its project selects it.
						...(nested ? { migrations_pattern: "migrations/*/migration.sql" } : {}),
					},
				],
			}),
		);
		const result = await migrationTestStep.run(
			{ cwd: dir, env: process.env, progress: () => {} },
			{ project: loadProjectConfig({ cwd: dir }), parity: true, updateSnapshot: true },
		);
		const data = result.data as {
			migrations: unknown[];
			replay: { ok: boolean; failure?: { migration: string; line: number; message: string } };
			parity: {
				agree: boolean;
				wrangler: { ok: boolean; failedAt?: string; applied: number; message?: string };
			};
		};
		const counts = new Map<string, number>();
		for (const f of result.findings) counts.set(f.code, (counts.get(f.code) ?? 0) + 1);
		rows.push({
			set,
			files: data.migrations.length,
			ours: data.replay.ok
				? "clean"
				: `fails at ${data.replay.failure?.migration}:${data.replay.failure?.line}`,
			wrangler: data.parity.wrangler.ok ? "clean" : `fails at ${data.parity.wrangler.failedAt}`,
			agree: data.parity.agree,
			findings: [...counts].map(([code, n]) => `${code}×${n}`).join(", "),
		});
		// The verdict must be a real one: a clean run applied every file on both sides.
		if (data.parity.wrangler.ok) expect(data.parity.wrangler.applied).toBe(data.migrations.length);
		if (set in KNOWN_DIFFERENCES) {
			expect(data.parity.agree, KNOWN_DIFFERENCES[set]).toBe(false);
		} else {
			expect(data.parity.agree, `${set}: ${JSON.stringify(data.parity)}`).toBe(true);
			expect(result.findings.some((f) => f.code === "PARITY_MISMATCH")).toBe(false);
		}
	});
});
