import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { wranglerVersion } from "../../../ci/cloudflare/wrangler.ts";
import type { D1Database } from "../../../ci/config/schema.ts";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import {
	compareWithWrangler,
	extractWranglerError,
	parityCacheKey,
	runWranglerReplay,
	type WranglerReplay,
} from "../../../ci/migrations/parity.ts";
import { type ReplayResult, replayMigrations } from "../../../ci/migrations/replay.ts";
import { makeProject, REPO, removeProjects } from "../../support/project.ts";

const catalog = (files: Record<string, string>) =>
	parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired: [],
		files: Object.entries(files).map(([name, sql]) => ({ name, bytes: Buffer.from(sql) })),
	});
const FILES = {
	"0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT);\n",
	"0002_b.sql": "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id));\n",
};
const DATABASE: D1Database = {
	binding: "DB",
	databaseName: "app",
	databaseId: undefined,
	migrationsDir: "migrations",
	migrationsTable: "d1_migrations",
	migrationsPattern: "migrations/*.sql",
};
const ours = (files: Record<string, string>, table = "d1_migrations"): ReplayResult =>
	replayMigrations(catalog(files).migrations, { migrationsTable: table });
const theirs = (fields: Partial<WranglerReplay>): WranglerReplay => ({
	ok: true,
	applied: [],
	failedAt: undefined,
	message: undefined,
	schema: { objects: [] },
	durationMs: 0,
	exitCode: 0,
	...fields,
});

describe("parityCacheKey()", () => {
	const key = parityCacheKey(catalog(FILES), DATABASE, "4.0.0");
	it("is 32 hex digits, the same for the same inputs", () => {
		expect(key).toMatch(/^[0-9a-f]{32}$/);
		expect(parityCacheKey(catalog({ ...FILES }), { ...DATABASE }, "4.0.0")).toBe(key);
	});
	it.each([
		["wrangler's version", catalog(FILES), DATABASE, "4.0.1"],
		["the migrations table", catalog(FILES), { ...DATABASE, migrationsTable: "other" }, "4.0.0"],
		[
			"the pattern",
			catalog(FILES),
			{ ...DATABASE, migrationsPattern: "migrations/**/*.sql" },
			"4.0.0",
		],
		[
			"a file's content",
			catalog({ ...FILES, "0002_b.sql": "CREATE TABLE b (x);" }),
			DATABASE,
			"4.0.0",
		],
		[
			"a file's name",
			catalog({ "0001_a.sql": FILES["0001_a.sql"], "0002_c.sql": FILES["0002_b.sql"] }),
			DATABASE,
			"4.0.0",
		],
		["a file fewer", catalog({ "0001_a.sql": FILES["0001_a.sql"] }), DATABASE, "4.0.0"],
	])("changes with %s", (_, c, database, version) => {
		expect(parityCacheKey(c, database, version)).not.toBe(key);
	});
});

describe("extractWranglerError()", () => {
	it.each([
		['✘ [ERROR] near "INSERT": syntax error\n', 'near "INSERT": syntax error'],
		["ok\n✘ [ERROR]   first  \n✘ [ERROR] second\n", "first"],
		["[ERROR]no space", "no space"],
		["all fine\nno errors here\n", undefined],
		["", undefined],
	])("%j → %j", (output, expected) => {
		expect(extractWranglerError(output)).toBe(expected);
	});
});

describe("compareWithWrangler()", () => {
	const clean = ours(FILES);
	const failing = ours({ ...FILES, "0003_bad.sql": "CREATE TABLE a (x);\n" });
	it.each([
		[
			"both clean, same schema",
			clean,
			theirs({ schema: clean.schema }),
			true,
			"wrangler agrees: clean",
		],
		[
			"both fail at the same file",
			failing,
			theirs({ ok: false, failedAt: "0003_bad.sql" }),
			true,
			"wrangler agrees: fails at 0003_bad.sql",
		],
		[
			"both fail, at different files",
			failing,
			theirs({ ok: false, failedAt: "0002_b.sql", message: "boom" }),
			false,
			"verdicts differ: ours fails at 0003_bad.sql, wrangler fails at 0002_b.sql (boom)",
		],
		[
			"ours clean, wrangler fails before any migration",
			clean,
			theirs({ ok: false }),
			false,
			"verdicts differ: ours clean, wrangler fails at (before any migration)",
		],
		[
			"ours fails, wrangler clean",
			failing,
			theirs({ schema: clean.schema }),
			false,
			"verdicts differ: ours fails at 0003_bad.sql, wrangler clean",
		],
		[
			"both clean, wrangler missing a table",
			clean,
			theirs({ schema: ours({ "0001_a.sql": FILES["0001_a.sql"] }).schema }),
			false,
			"schemas differ between our replay and wrangler (1 object(s))",
		],
	])("%s", (_, replay, wrangler, agree, summary) => {
		const result = compareWithWrangler(replay, wrangler);
		expect(result).toMatchObject({ agree, summary, wrangler });
	});

	it("lists the differing objects when both are clean", () => {
		const result = compareWithWrangler(clean, theirs({ schema: { objects: [] } }));
		expect(result.differences.map((d) => `${d.kind} ${d.name}`)).toEqual([
			"removed a",
			"removed b",
		]);
		expect(compareWithWrangler(failing, theirs({ ok: false })).differences).toEqual([]);
	});
});

describe("runWranglerReplay() with wrangler's Miniflare", () => {
	const cacheDir = mkdtempSync(path.join(tmpdir(), "wp-parity-cache-"));
	afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));
	const run = (
		files: Record<string, string>,
		extra: { cacheDir?: string; reuse?: boolean; database?: D1Database } = {},
	) =>
		runWranglerReplay({
			root: REPO,
			catalog: catalog(files),
			database: DATABASE,
			env: process.env,
			...extra,
		});

	it("applies every file as wrangler does and reads back the schema and ledger", async () => {
		const t0 = performance.now();
		const result = await run(FILES, {
			database: { ...DATABASE, migrationsTable: "app ledger-v2" },
		});
		expect(result.durationMs).toBeGreaterThanOrEqual(0);
		expect(result.durationMs).toBeLessThanOrEqual(performance.now() - t0);
		expect(result).toMatchObject({
			ok: true,
			applied: ["0001_a.sql", "0002_b.sql"],
			failedAt: undefined,
			message: undefined,
			exitCode: 0,
			engine: "miniflare",
		});
		expect(result.cached).toBeUndefined();
		expect(result.schema).toEqual(ours(FILES, "my_ledger").schema);
	}, 60_000);

	it("stops at the first failing file with D1's message", async () => {
		const result = await run({
			...FILES,
			"0003_bad.sql": "CREATE TABLE a (x);\n",
			"0004_c.sql": "CREATE TABLE c (x);\n",
		});
		expect(result).toMatchObject({
			ok: false,
			applied: ["0001_a.sql", "0002_b.sql"],
			failedAt: "0003_bad.sql",
			exitCode: 1,
		});
		// The D1 error's own message, not the Error wrapping it ("Error: ...").
		expect(result.message).toMatch(/^table a already exists\b/);
		expect(result.schema.objects.map((o) => o.name)).toEqual(["a", "b"]);
	}, 60_000);

	it("is no clean verdict when a migration empties wrangler's ledger: the first unrecorded file", async () => {
		const result = await run({ ...FILES, "0003_reset.sql": "DELETE FROM d1_migrations;\n" });
		expect(result).toMatchObject({
			ok: false,
			applied: ["0003_reset.sql"],
			failedAt: "0001_a.sql",
			message: undefined,
			exitCode: 1,
		});
	}, 60_000);

	it("keeps a verdict and reuses it for the same files, unless told not to", async () => {
		const fresh = await run(FILES, { cacheDir });
		const [entry] = readdirSync(cacheDir);
		const key = parityCacheKey(catalog(FILES), DATABASE, `miniflare ${wranglerVersion(REPO)}`);
		expect(entry).toBe(`parity-${key}.json`);
		// Proof the cache is read: a verdict only the cache file holds.
		const file = path.join(cacheDir, `parity-${key}.json`);
		writeFileSync(file, JSON.stringify({ ...fresh, message: "from the cache" }));
		expect(await run(FILES, { cacheDir })).toMatchObject({
			message: "from the cache",
			cached: true,
			engine: "miniflare",
		});
		const rerun = await run(FILES, { cacheDir, reuse: false });
		expect(rerun.cached).toBeUndefined();
		expect(rerun.message).toBeUndefined();
		expect(JSON.parse(readFileSync(file, "utf8")).message).toBeUndefined();
	}, 60_000);

	it("runs again over a damaged cache entry", async () => {
		const dir = mkdtempSync(path.join(cacheDir, "damaged-"));
		const key = parityCacheKey(catalog(FILES), DATABASE, `miniflare ${wranglerVersion(REPO)}`);
		writeFileSync(path.join(dir, `parity-${key}.json`), "{ not json");
		const result = await run(FILES, { cacheDir: dir });
		expect(result).toMatchObject({ ok: true, applied: ["0001_a.sql", "0002_b.sql"] });
		expect(result.cached).toBeUndefined();
	}, 60_000);

	it("stops when aborted", async () => {
		const signal = AbortSignal.abort(new Error("interrupted"));
		await expect(
			runWranglerReplay({
				root: REPO,
				catalog: catalog(FILES),
				database: DATABASE,
				env: {},
				signal,
			}),
		).rejects.toThrow("interrupted");
	}, 60_000);
});

describe("runWranglerReplay() with the wrangler CLI", () => {
	afterAll(removeProjects);
	// What D1_LOCAL_BOM_TRIGGER warns of, by real wrangler: a BOM, then a trigger first.
	it("fails where --local splits a BOM file's leading trigger, which our replay applies", async () => {
		const files = {
			"0001_a.sql": "CREATE TABLE a (x);\n",
			"0002_t.sql":
				"\uFEFFCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\n  UPDATE a SET x = 2;\nEND;\n",
		};
		const root = makeProject({
			prefix: "wp-parity-wrangler-",
			files: Object.fromEntries(Object.entries(files).map(([n, sql]) => [`migrations/${n}`, sql])),
		});
		expect(ours(files).ok).toBe(true);
		const result = await runWranglerReplay({
			root,
			catalog: catalog(files),
			database: DATABASE,
			env: process.env,
			engine: "wrangler",
		});
		expect(result).toMatchObject({ ok: false, applied: ["0001_a.sql"], failedAt: "0002_t.sql" });
	}, 120_000);

	// What D1_LOCAL_TRANSACTION_TEXT warns of, by real wrangler: the text twice, in comments only.
	it("fails where --local meets the text BEGIN TRANSACTION twice, which our replay applies", async () => {
		const files = {
			"0001_a.sql":
				"-- BEGIN TRANSACTION is D1's job\nCREATE TABLE a (x);\n-- (no BEGIN TRANSACTION)\n",
		};
		const root = makeProject({
			prefix: "wp-parity-wrangler-",
			files: Object.fromEntries(Object.entries(files).map(([n, sql]) => [`migrations/${n}`, sql])),
		});
		expect(ours(files, "d1_migrations").ok).toBe(true);
		const result = await runWranglerReplay({
			root,
			catalog: catalog(files),
			database: DATABASE,
			env: process.env,
			engine: "wrangler",
		});
		expect(result).toMatchObject({ ok: false, applied: [], failedAt: "0001_a.sql" });
		expect(result.message).toContain("several transactions");
	}, 120_000);

	// One real `wrangler d1 migrations apply --local` (seconds): a set whose second file fails.
	it("records what wrangler applied, where it stopped and its error, and reads the local database", async () => {
		const files = {
			"0001_a.sql": FILES["0001_a.sql"],
			"0002_bad.sql": "CREATE TABLE a (x);\n",
			"0003_c.sql": "CREATE TABLE c (x);\n",
		};
		const root = makeProject({
			prefix: "wp-parity-wrangler-",
			files: Object.fromEntries(Object.entries(files).map(([n, sql]) => [`migrations/${n}`, sql])),
		});
		const result = await runWranglerReplay({
			root,
			catalog: catalog(files),
			database: { ...DATABASE, migrationsTable: "my_ledger" },
			env: process.env,
			engine: "wrangler",
		});
		expect(result).toMatchObject({
			ok: false,
			applied: ["0001_a.sql"],
			failedAt: "0002_bad.sql",
			engine: "wrangler",
		});
		expect(result.exitCode).not.toBe(0);
		expect(result.message).toContain("table a already exists");
		expect(result.schema).toEqual(ours({ "0001_a.sql": FILES["0001_a.sql"] }, "my_ledger").schema);
	}, 120_000);

	const cli = (files: Record<string, string>) =>
		runWranglerReplay({
			root: makeProject({
				prefix: "wp-parity-wrangler-",
				files: Object.fromEntries(
					Object.entries(files).map(([n, sql]) => [`migrations/${n}`, sql]),
				),
			}),
			catalog: catalog(files),
			database: DATABASE,
			env: process.env,
			engine: "wrangler",
		});

	it("records a clean run: every file applied, no failure, exit code 0", async () => {
		const result = await cli(FILES);
		expect(result).toMatchObject({
			ok: true,
			applied: ["0001_a.sql", "0002_b.sql"],
			failedAt: undefined,
			message: undefined,
			exitCode: 0,
			engine: "wrangler",
		});
		expect(result.schema).toEqual(ours(FILES).schema);
	}, 120_000);

	it("is no clean verdict when wrangler exits 0 but its ledger lacks files", async () => {
		const result = await cli({ ...FILES, "0003_reset.sql": "DELETE FROM d1_migrations;\n" });
		expect(result).toMatchObject({
			ok: false,
			applied: ["0003_reset.sql"],
			failedAt: "0001_a.sql",
			message: "exit code 0",
			exitCode: 0,
		});
	}, 120_000);
});
