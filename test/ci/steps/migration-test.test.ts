import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../../ci/config/load.ts";
import { makeSchema } from "../../../ci/migrations/schema.ts";
import {
	formatReplayFindings,
	migrationTestStep,
	planMigrationStatuses,
} from "../../../ci/steps/migration-test.ts";

const temps: string[] = [];
afterAll(() => {
	for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-mt-"));
	temps.push(dir);
	mkdirSync(path.join(dir, "migrations"));
	writeFileSync(
		path.join(dir, "wrangler.jsonc"),
		JSON.stringify({ name: "mt", d1_databases: [{ binding: "DB", database_id: "x" }] }),
	);
	for (const [name, sql] of Object.entries(files)) {
		writeFileSync(path.join(dir, "migrations", name), sql);
	}
	return dir;
}

const run = (dir: string, args: { data?: boolean } = {}) =>
	migrationTestStep.run(
		{ cwd: dir, env: {}, progress: () => {} },
		{ project: loadProjectConfig({ cwd: dir }), updateSnapshot: true, ...args },
	);

const NOT_NULL = {
	"0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n",
	"0002_plan.sql": "ALTER TABLE users ADD COLUMN plan TEXT NOT NULL;\n",
};

describe("migrationTestStep (the data-carrying replay)", () => {
	it("reports a migration that fails only on populated tables as REPLAY_DATA_FAILED", async () => {
		const result = await run(project(NOT_NULL));
		expect(result.ok).toBe(false);
		const codes = result.findings.map((f) => [f.code, f.file]);
		expect(codes).toContainEqual(["REPLAY_DATA_FAILED", "migrations/0002_plan.sql"]);
		expect(codes.map(([code]) => code)).not.toContain("REPLAY_FAILED");
		// The lint warning says the same before any replay.
		expect(codes).toContainEqual(["D1_ADD_NOT_NULL", "migrations/0002_plan.sql"]);
	});

	it("says to fix orphan rows when a rebuild adds a foreign key their parents do not satisfy", async () => {
		const result = await run(
			project({
				"0001_a.sql":
					"CREATE TABLE authors (id INTEGER PRIMARY KEY);\nCREATE TABLE entries (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL);\n",
				// drizzle-kit's rebuild; the copied ids point past every author.
				"0002_fk.sql":
					"PRAGMA foreign_keys=OFF;\nCREATE TABLE __new_entries (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors(id));\nINSERT INTO __new_entries SELECT id, author_id + 1000 FROM entries;\nDROP TABLE entries;\nALTER TABLE __new_entries RENAME TO entries;\nPRAGMA foreign_keys=ON;\n",
			}),
		);
		const failed = result.findings.find((f) => f.code === "REPLAY_DATA_FAILED");
		expect(failed?.message).toMatch(/FOREIGN KEY constraint failed/);
		expect(failed?.message).toMatch(
			/delete or fix rows whose parent is missing before a rebuild adds a foreign key/,
		);
		// Not said of a failure that is no foreign key.
		const notNull = (await run(project(NOT_NULL))).findings.find(
			(f) => f.code === "REPLAY_DATA_FAILED",
		);
		expect(notNull?.message).not.toMatch(/parent is missing/);
	});

	it("warns of a UNIQUE index over values existing rows may share (REPLAY_DATA_UNIQUE), passing", async () => {
		const result = await run(
			project({
				"0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
				"0002_unique.sql": "CREATE UNIQUE INDEX users_email ON users (email);\n",
			}),
		);
		expect(result.ok).toBe(true);
		expect(result.findings.map((f) => [f.code, f.severity, f.file])).toEqual([
			["REPLAY_DATA_UNIQUE", "warning", "migrations/0002_unique.sql"],
		]);
		expect(result.findings[0]?.message).toMatch(
			/UNIQUE constraint failed: users\.email.*duplicates/,
		);
	});

	it("skips it with data: false (--no-data)", async () => {
		const result = await run(project(NOT_NULL), { data: false });
		expect(result.findings.map((f) => f.code)).not.toContain("REPLAY_DATA_FAILED");
		expect(result.ok).toBe(true);
	});

	it("reports a plain failure once, as REPLAY_FAILED", async () => {
		const result = await run(project({ "0001_bad.sql": "CREATE INDEX i ON missing (id);\n" }));
		const codes = result.findings.map((f) => f.code);
		expect(codes).toContain("REPLAY_FAILED");
		expect(codes).not.toContain("REPLAY_DATA_FAILED");
	});

	it("passes seed rows with small ids after the fill, as production keeps them", async () => {
		const result = await run(
			project({
				"0001_roles.sql":
					"CREATE TABLE roles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\nINSERT INTO roles (id, name) VALUES (1, 'admin');\n",
				"0002_more.sql": "INSERT INTO roles (id, name) VALUES (2, 'editor');\n",
			}),
		);
		expect(result.findings).toEqual([]);
		expect(result.ok).toBe(true);
	});
});

describe("migrationTestStep (the snapshot check)", () => {
	const FILES = {
		"0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
		"0002_index.sql": "CREATE INDEX users_email ON users (email);\n",
	};
	const check = (dir: string) =>
		migrationTestStep.run(
			{ cwd: dir, env: {}, progress: () => {} },
			{ project: loadProjectConfig({ cwd: dir }) },
		);
	const snapshotOf = (dir: string) => path.join(dir, "migrations.schema.sql");

	// The byte-identical snapshot is a shortcut; any other text is still parsed and compared.
	it.each([
		["as --update-snapshot wrote it", (text: string) => text],
		["with CRLF line endings", (text: string) => text.replace(/\n/g, "\r\n")],
		["with another header", (text: string) => text.replace(/^-- Schema of[^\n]*/, "-- edited")],
		[
			"with the objects in another order",
			(text: string) => text.split("\n\n").reverse().join("\n\n"),
		],
	])("matches a snapshot %s", async (_label, edit) => {
		const dir = project(FILES);
		await run(dir);
		writeFileSync(snapshotOf(dir), edit(readFileSync(snapshotOf(dir), "utf8")));
		const result = await check(dir);
		expect(result.data?.snapshot.status).toBe("matches");
		expect(result.ok).toBe(true);
	});

	it("reports drift when an object differs", async () => {
		const dir = project(FILES);
		await run(dir);
		const text = readFileSync(snapshotOf(dir), "utf8");
		writeFileSync(snapshotOf(dir), text.replace("email TEXT NOT NULL", "email TEXT"));
		const result = await check(dir);
		expect(result.data?.snapshot.status).toBe("drift");
		expect(result.findings.map((f) => f.code)).toEqual(["SNAPSHOT_DRIFT"]);
	});
});

describe("planMigrationStatuses()", () => {
	const catalog = {
		migrations: ["0001_a.sql", "0002_b.sql", "0003_c.sql"].map((name) => ({
			name,
			checksum: `sum-${name}`,
		})),
		retired: ["0000_old.sql"],
	};
	const failure = (migration: string) => ({ migration }) as never;
	it.each([
		[
			"every migration applied",
			["0001_a.sql", "0002_b.sql", "0003_c.sql"],
			undefined,
			["applied", "applied", "applied"],
		],
		["a failure in the middle", ["0001_a.sql"], "0002_b.sql", ["applied", "failed", "not-run"]],
		["a failure at the first", [], "0001_a.sql", ["failed", "not-run", "not-run"]],
	])("%s", (_, applied, failedAt, statuses) => {
		const rows = planMigrationStatuses(catalog as never, {
			applied: applied.map((name) => ({ name, durationMs: 1 })),
			failure: failedAt ? failure(failedAt) : undefined,
		});
		expect(rows).toEqual([
			...catalog.migrations.map((m, i) => ({
				name: m.name,
				checksum: m.checksum,
				status: statuses[i],
			})),
			{ name: "0000_old.sql", checksum: null, status: "retired" },
		]);
	});
});

describe("formatReplayFindings() REPLAY_DQS_STRING", () => {
	const fallback = {
		migration: "0002_b.sql",
		path: "migrations/0002_b.sql",
		line: 3,
		identifier: "hello",
	};
	const findingsOf = (dqsFallbacks: (typeof fallback & { trigger?: string })[]) =>
		formatReplayFindings({
			replay: {
				ok: true,
				dqsFallbacks,
				dropCascades: [],
				applied: [],
				failure: undefined,
				emptyTables: [],
				schema: makeSchema([], []),
				durationMs: 0,
			},
			dataFailure: undefined,
			duplicateFailures: [],
		});

	it.each([
		[fallback, /^"hello" names no column here, so D1 reads it as the string 'hello'/],
		[
			{ ...fallback, trigger: "log_insert" },
			/^"hello" in trigger log_insert names no column when this statement fires it, so D1 reads it as the string 'hello'/,
		],
	])("names where the name is: %j", (dqs, message) => {
		const [finding] = findingsOf([dqs]);
		expect(finding).toMatchObject({
			code: "REPLAY_DQS_STRING",
			file: "migrations/0002_b.sql",
			line: 3,
		});
		expect(finding?.message).toMatch(message);
	});
	it("gives one finding per statement, naming the first names and how many more", () => {
		const names = Array.from({ length: 8 }, (_, n) => `v${n}`);
		const findings = findingsOf([
			...names.map((identifier) => ({ ...fallback, identifier })),
			{ ...fallback, identifier: "v0" },
			{ ...fallback, line: 9, identifier: "other" },
			{ ...fallback, identifier: "t", trigger: "log_insert" },
		]);
		expect(findings.map((f) => [f.line, f.message.slice(0, 60)])).toEqual([
			[3, '"v0", "v1", "v2", "v3", "v4" and 3 more name no column here,'],
			[9, '"other" names no column here, so D1 reads it as the string \''],
			[3, '"t" in trigger log_insert names no column when this statemen'],
		]);
		expect(findings[0]?.message).toContain(
			"so D1 reads them as the strings 'v0', 'v1', 'v2', 'v3', 'v4', …",
		);
	});
});

describe("formatReplayFindings() REPLAY_DATA_EMPTY", () => {
	const replay = {
		ok: true,
		dqsFallbacks: [],
		dropCascades: [],
		applied: [],
		failure: undefined,
		emptyTables: [],
		schema: makeSchema([], []),
		durationMs: 0,
	};
	const table = (n: number) => ({
		table: `t${n}`,
		reason: `CHECK constraint failed: v${n} GLOB 'x*'`,
		path: `migrations/000${n}_a.sql`,
	});

	it("names the tables the fill left empty, with SQLite's refusal, in one warning", () => {
		const findings = formatReplayFindings({
			replay,
			dataFailure: undefined,
			duplicateFailures: [],
			emptyTables: [1, 2, 3, 4, 5, 6, 7].map(table),
		});
		expect(findings).toHaveLength(1);
		expect(findings[0]).toMatchObject({
			code: "REPLAY_DATA_EMPTY",
			severity: "warning",
			file: "migrations/0001_a.sql",
		});
		expect(findings[0]?.message).toMatch(
			/^The data-carrying replay could write no row into t1 \(CHECK constraint failed: v1 GLOB 'x\*'\), .*t5 \(.*\) and 2 more, so later migrations met these tables empty/,
		);
	});

	it("says nothing when every table got rows", () => {
		expect(
			formatReplayFindings({
				replay,
				dataFailure: undefined,
				duplicateFailures: [],
				emptyTables: [],
			}),
		).toEqual([]);
	});
});
