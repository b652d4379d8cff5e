import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { captureCli } from "../support/cli.ts";

// A real drizzle-kit history (zpg6/better-auth-cloudflare, see shared/corpus/d1/SOURCES.md): its
// 0001 rebuilds `users` with PRAGMA foreign_keys=OFF, which on D1 cascades into sessions/accounts.
const repoRoot = path.resolve(import.meta.dirname, "../..");
const corpusDir = path.resolve(
	repoRoot,
	process.env.WORKERS_PIPELINE_CORPUS ?? "../shared/corpus/d1",
);
const SET = path.join(corpusDir, "zpg6__better-auth-cloudflare__examples-hono");
const present = existsSync(SET);
if (!present && process.env.CI)
	throw new Error(`the D1 corpus is required under CI: ${SET} is missing`);
if (!present) console.info(`acknowledgement tests skipped: no corpus at ${corpusDir}`);

const temps: string[] = [];
afterAll(() => {
	for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

const REASON = "applied in production before adoption; the rebuild ran on empty tables";

function project(acknowledge: unknown[]): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-ack-"));
	temps.push(dir);
	cpSync(SET, path.join(dir, "drizzle"), { recursive: true });
	writeFileSync(
		path.join(dir, "wrangler.jsonc"),
		JSON.stringify({
			name: "ack-fixture",
			compatibility_date: "2026-06-01",
			d1_databases: [{ binding: "DB", database_name: "ack", migrations_dir: "drizzle" }],
		}),
	);
	writeFileSync(
		path.join(dir, "workers-pipeline.jsonc"),
		JSON.stringify({
			lint: { biome: false, typecheck: false },
			test: { command: ["node", "-e", "0"] },
			migrations: { acknowledge },
		}),
	);
	return dir;
}

// The CLI in `dir`, with only PATH in its environment.
const cli = (argv: string[], dir: string) => captureCli([...argv, "--cwd", dir], { cwd: dir });

interface Json {
	findings: { step: string; code: string; acknowledged?: string; file: string | null }[];
}

describe.skipIf(!present)("acknowledging a real history", () => {
	const all = [
		{ code: "D1_FOREIGN_KEYS_OFF", files: ["0001_*.sql"], reason: REASON },
		{ code: "REPLAY_DROP_CASCADE", files: ["0001_furry_unicorn.sql"], reason: REASON },
		{ code: "D1_DESTRUCTIVE", reason: REASON },
	];

	it("should fail on the cascading rebuild until it is acknowledged", async () => {
		const dir = project(all.filter((a) => a.code !== "REPLAY_DROP_CASCADE"));
		await cli(["migration-test", "--update-snapshot"], dir);
		const run = await cli(["migration-test", "--json"], dir);
		expect(run.code).toBe(1);
		const report = JSON.parse(run.stdout) as Json;
		expect(report.findings.filter((f) => !f.acknowledged).map((f) => f.code)).toEqual([
			"REPLAY_DROP_CASCADE",
		]);
	});

	it.each([
		["migration-test", ["migration-test", "--json"]],
		[
			"ci (lint and migration-test split the findings)",
			["ci", "--no-parity", "--no-build", "--json"],
		],
	])(
		"should accept a replay finding's acknowledgement and never call a matching one unused in %s",
		async (_, argv) => {
			const dir = project(all);
			await cli(["migration-test", "--update-snapshot"], dir);
			const run = await cli(argv, dir);
			const report = JSON.parse(run.stdout) as Json;
			expect(report.findings.filter((f) => !f.acknowledged)).toEqual([]);
			expect(run.code).toBe(0);
			expect(report.findings.find((f) => f.code === "REPLAY_DROP_CASCADE")?.acknowledged).toBe(
				REASON,
			);
		},
	);

	it("should report an acknowledgement of a replay code that matches nothing, once, in ci", async () => {
		const dir = project([
			...all,
			{ code: "REPLAY_DQS_STRING", files: ["0000_*.sql"], reason: REASON },
		]);
		await cli(["migration-test", "--update-snapshot"], dir);
		const report = JSON.parse(
			(await cli(["ci", "--no-parity", "--no-build", "--json"], dir)).stdout,
		) as Json;
		expect(
			report.findings.filter((f) => f.code === "CONFIG_UNUSED_ACKNOWLEDGEMENT").map((f) => f.step),
		).toEqual(["migration-test"]);
	});

	it("should print acknowledged findings as one summary line, not one line each", async () => {
		const dir = project(all);
		await cli(["migration-test", "--update-snapshot"], dir);
		const run = await cli(["migration-test"], dir);
		expect(run.code).toBe(0);
		const ackLines = run.stdout.split("\n").filter((l) => l.startsWith("ack "));
		expect(ackLines).toHaveLength(1);
		expect(ackLines[0]).toMatch(/^ack {5}\d+ acknowledged finding\(s\) \(D1_DESTRUCTIVE ×\d+, /);
		expect(ackLines[0]).toContain("REPLAY_DROP_CASCADE ×1");
		expect(run.stdout).not.toContain(REASON);
	});
});
