import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runWrangler } from "../../../ci/cloudflare/wrangler.ts";
import {
	lintEnvironment,
	loadProjectConfig,
	resolveAccountId,
	resolveEnvironment,
	selectDatabase,
	snapshotPathFor,
} from "../../../ci/config/load.ts";
import { UserError } from "../../../ci/errors.ts";
import { readCatalog } from "../../../ci/migrations/catalog.ts";

const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A throwaway project directory holding the given files (name → content). */
function project(files: Record<string, string>): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-config-"));
	dirs.push(dir);
	for (const [name, content] of Object.entries(files)) {
		mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
		writeFileSync(path.join(dir, name), content);
	}
	return dir;
}

const load = (files: Record<string, string>) => loadProjectConfig({ cwd: project(files) });

/** The UserError a call throws; fails the test when it does not throw one. */
function userErrorOf(fn: () => unknown): UserError {
	try {
		fn();
	} catch (error) {
		expect(error).toBeInstanceOf(UserError);
		return error as UserError;
	}
	throw new Error("expected a UserError, nothing was thrown");
}

const WRANGLER_WITH_ENVS = `// top-level comment
{
	"name": "app", // trailing comment
	/* block comment */
	"d1_databases": [
		{ "binding": "DB", "database_id": "top-id", },
	],
	"env": {
		"staging": {
			"d1_databases": [{ "binding": "DB", "database_id": "staging-id", "migrations_dir": "db/migrations/" }],
		},
		"preview": { "vars": { "X": "1" } },
		"multi": {
			"name": "app-multi-custom",
			"d1_databases": [{ "binding": "A" }, { "binding": "B", "migrations_table": "ledger" }],
		},
	},
}
`;

describe("loadProjectConfig()", () => {
	it("should load JSONC with comments and trailing commas", () => {
		const config = load({ "wrangler.jsonc": WRANGLER_WITH_ENVS });
		expect(config.wrangler.name).toBe("app");
		expect(config.wrangler.d1_databases?.[0]?.database_id).toBe("top-id");
		expect(config.environments).toEqual(["staging", "preview", "multi"]);
		expect(config.settingsPath).toBeUndefined();
	});

	// wrangler's order (workers-utils config/config-helpers.ts): json, then jsonc, then toml.
	it.each([
		[["wrangler.toml"], "wrangler.toml"],
		[["wrangler.jsonc", "wrangler.toml"], "wrangler.jsonc"],
		[["wrangler.json", "wrangler.jsonc"], "wrangler.json"],
		[["wrangler.json", "wrangler.jsonc", "wrangler.toml"], "wrangler.json"],
	])("should pick as wrangler does among %j: %s", (names, picked) => {
		const files = Object.fromEntries(
			names.map((n) => [n, n.endsWith(".toml") ? `name = "${n}"\n` : `{"name": "${n}"}`]),
		);
		const config = load(files);
		expect(path.basename(config.wranglerPath)).toBe(picked);
		expect(config.wrangler.name).toBe(picked);
	});

	it("should find the config up the tree, as wrangler does, from a subdirectory", () => {
		const dir = project({ "wrangler.toml": `name = "up"\n` });
		const sub = path.join(dir, "src", "deep");
		mkdirSync(sub, { recursive: true });
		const config = loadProjectConfig({ cwd: sub });
		expect(config.wranglerPath).toBe(path.join(dir, "wrangler.toml"));
		expect(config.root).toBe(sub);
	});

	it("should read wrangler.toml as wrangler.jsonc: names, envs, D1 arrays of tables", () => {
		const config = load({
			"wrangler.toml": [
				'name = "app"',
				'account_id = "acc"',
				"[[d1_databases]]",
				'binding = "DB"',
				'database_id = "top-id"',
				'migrations_dir = "db/migrations"',
				"[env.staging]",
				'name = "app-staging"',
				"[[env.staging.d1_databases]]",
				'binding = "DB"',
				'database_id = "staging-id"',
				"",
			].join("\n"),
		});
		expect(config.environments).toEqual(["staging"]);
		const top = resolveEnvironment(config, undefined);
		expect(top.databases[0]).toMatchObject({
			databaseId: "top-id",
			migrationsDir: "db/migrations",
		});
		const staging = resolveEnvironment(config, "staging");
		expect(staging).toMatchObject({ workerName: "app-staging" });
		expect(staging.databases[0]).toMatchObject({
			databaseId: "staging-id",
			migrationsDir: "migrations",
		});
	});

	it("should apply the pipeline settings' defaults when workers-pipeline.jsonc is absent", () => {
		const config = load({ "wrangler.jsonc": `{"name": "app"}` });
		expect(config.settings.lint).toEqual({ biome: true, typecheck: true });
		expect(config.settings.test.command).toEqual(["npm", "test"]);
		expect(config.settings.migrations.acknowledge).toEqual([]);
	});

	it("should read workers-pipeline.jsonc with comments and trailing commas", () => {
		const config = load({
			"wrangler.jsonc": `{"name": "app"}`,
			"workers-pipeline.jsonc": `{
				// no toolchain in this project
				"lint": { "biome": false, "typecheck": false, },
				"test": { "command": ["node", "-e", "0"], },
			}`,
		});
		expect(config.settingsPath).toBe(path.join(config.root, "workers-pipeline.jsonc"));
		expect(config.settings.lint).toEqual({ biome: false, typecheck: false });
		expect(config.settings.test.command).toEqual(["node", "-e", "0"]);
	});

	it("should refuse a directory without a wrangler config and say what it looked for", () => {
		const error = userErrorOf(() => load({}));
		expect(error.code).toBe("E_CONFIG_MISSING");
		expect(error.message).toContain("wrangler.json, wrangler.jsonc, wrangler.toml");
		expect(error.message).toContain("--cwd");
	});

	it("should name the apps below a monorepo root, and the --cwd to pass", () => {
		const error = userErrorOf(() =>
			load({
				"package.json": '{"workspaces":["apps/*"]}',
				"apps/api/wrangler.toml": 'name = "api"\n',
				"apps/web/wrangler.jsonc": '{ "name": "web" }',
				"node_modules/x/wrangler.toml": 'name = "x"\n',
			}),
		);
		expect(error.code).toBe("E_CONFIG_MISSING");
		expect(error.message).toContain(
			"Apps below it: apps/api/wrangler.toml, apps/web/wrangler.jsonc; pass --cwd apps/api.",
		);
	});

	it("should refuse a project directory that does not exist", () => {
		const missing = path.join(project({}), "nope");
		const error = userErrorOf(() => loadProjectConfig({ cwd: missing }));
		expect(error.code).toBe("E_CONFIG_MISSING");
		expect(error.message).toContain(missing);
	});

	// Each broken config: the file, the JSON path, what was expected and what was found.
	it.each([
		{
			label: "wrong type",
			file: "wrangler.jsonc",
			wrangler: `{"name": "app", "env": {"staging": {"d1_databases": [{"binding": 12}]}}}`,
			settings: undefined,
			parts: ["$.env.staging.d1_databases[0].binding", "expected string", "found number 12"],
		},
		{
			label: "missing name",
			file: "wrangler.jsonc",
			wrangler: `{"d1_databases": []}`,
			settings: undefined,
			parts: ["$.name", "expected string", "found nothing (missing)"],
		},
		{
			label: "env that is not an object",
			file: "wrangler.jsonc",
			wrangler: `{"name": "app", "env": {"staging": []}}`,
			settings: undefined,
			parts: ["$.env.staging", "expected object", "found an array of 0"],
		},
		{
			label: "empty migrations_table",
			file: "wrangler.jsonc",
			wrangler: `{"name": "app", "d1_databases": [{"binding": "DB", "migrations_table": ""}]}`,
			settings: undefined,
			parts: [
				"$.d1_databases[0].migrations_table",
				"expected a non-empty table name",
				'found string ""',
			],
		},
		{
			label: "unknown key in workers-pipeline.jsonc",
			file: "workers-pipeline.jsonc",
			wrangler: `{"name": "app"}`,
			settings: `{"lint": {"biome": false, "typcheck": false}}`,
			parts: ["$.lint (line 1, column 27)", 'unknown key "typcheck"', "check the spelling"],
		},
		{
			label: "naming that is no preset",
			file: "workers-pipeline.jsonc",
			wrangler: `{"name": "app"}`,
			settings: `{\n  "migrations": {\n    "naming": "drizzle"\n  }\n}`,
			parts: [
				"$.migrations.naming (line 3, column 15): expected a preset (",
				'"drizzle-kit", "drizzle-kit-v1"',
				'a rule { "pattern": "<regex>"',
				'found string "drizzle"',
			],
		},
		{
			label: "acknowledgement without reason",
			file: "workers-pipeline.jsonc",
			wrangler: `{"name": "app"}`,
			settings: `{"migrations": {"acknowledge": [{"code": "CATALOG_BAD_NAME", "files": ["1_x.sql"]}]}}`,
			parts: ["$.migrations.acknowledge[0].reason", "expected string", "found nothing (missing)"],
		},
		{
			label: "acknowledgement with a too short reason",
			file: "workers-pipeline.jsonc",
			wrangler: `{"name": "app"}`,
			settings: `{"migrations": {"acknowledge": [{"code": "CATALOG_BAD_NAME", "files": ["1_x.sql"], "reason": "old"}]}}`,
			parts: [
				"$.migrations.acknowledge[0].reason",
				"expected a reason of at least 10 characters",
				'found string "old"',
			],
		},
	])(
		"should name file, path, expectation and value for a $label",
		({ file, wrangler, settings, parts }) => {
			const dir = project({
				"wrangler.jsonc": wrangler,
				...(settings ? { "workers-pipeline.jsonc": settings } : {}),
			});
			const error = userErrorOf(() => loadProjectConfig({ cwd: dir }));
			expect(error.code).toBe("E_CONFIG_INVALID");
			expect(error.message.startsWith(`${path.join(dir, file)}: invalid configuration\n`)).toBe(
				true,
			);
			for (const part of parts) expect(error.message).toContain(part);
		},
	);

	it.each([
		["wrangler.jsonc", `{\n\t"name": "app",\n\t"d1_databases": [ { "binding": "DB" } }\n}`, 3, 40],
		["wrangler.jsonc", `{\n  "name": "app"\n  "main": "x.js"\n}`, 3, 3],
		["workers-pipeline.jsonc", `{ "lint": { "biome": false `, 1, 28],
	])("should point at line:col of invalid JSONC in %s (%#)", (file, text, line, column) => {
		const dir = project({
			"wrangler.jsonc": file === "wrangler.jsonc" ? text : `{"name": "app"}`,
			...(file === "workers-pipeline.jsonc" ? { [file]: text } : {}),
		});
		const error = userErrorOf(() => loadProjectConfig({ cwd: dir }));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toMatch(
			new RegExp(
				`^${escapeRegExp(path.join(dir, file))}:${line}:${column}: invalid JSONC \\(\\w+\\)`,
			),
		);
	});

	// The same quality for every format wrangler reads: file, path, expected, found.
	it.each([
		{
			file: "wrangler.toml",
			text: "[[env.staging.d1_databases]]\nbinding = 12\n",
			parts: [
				"$.name",
				"found nothing (missing)",
				"$.env.staging.d1_databases[0].binding",
				"expected string",
				"found number 12",
			],
		},
		{
			file: "wrangler.toml",
			text: 'name = "app"\n[[d1_databases]]\nbinding = "DB"\nmigrations_table = ""\n',
			parts: [
				"$.d1_databases[0].migrations_table",
				"expected a non-empty table name",
				'found string ""',
			],
		},
		{
			file: "wrangler.json",
			text: '{"name": "app", "env": {"staging": []}}',
			parts: ["$.env.staging", "expected object", "found an array of 0"],
		},
	])("should name file, path, expectation and value in $file", ({ file, text, parts }) => {
		const dir = project({ [file]: text });
		const error = userErrorOf(() => loadProjectConfig({ cwd: dir }));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message.startsWith(`${path.join(dir, file)}: invalid configuration\n`)).toBe(true);
		for (const part of parts) expect(error.message).toContain(part);
	});

	it.each([
		['name = "app"\nmain = \n', 2, 8],
		['name = "app"\n[[d1_databases]]\nbinding = "DB\n', 3, 14],
		['name = "app"\nname = "twice"\n', 2, 1],
	])("should point at line:col of invalid TOML (%#)", (text, line, column) => {
		const dir = project({ "wrangler.toml": text });
		const error = userErrorOf(() => loadProjectConfig({ cwd: dir }));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toMatch(
			new RegExp(
				`^${escapeRegExp(path.join(dir, "wrangler.toml"))}:${line}:${column}: invalid TOML \\(.+\\)`,
			),
		);
	});

	it("should refuse a --config file wrangler cannot read, by extension", () => {
		const dir = project({ "wrangler.yaml": "name: app\n" });
		const error = userErrorOf(() => loadProjectConfig({ cwd: dir, config: "wrangler.yaml" }));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain(".json, .jsonc or .toml");
	});

	it("should refuse migrations_pattern without migrations_dir, naming the binding's path", () => {
		const error = userErrorOf(() =>
			load({
				"wrangler.jsonc": `{"name": "app", "d1_databases": [{"binding": "DB", "migrations_pattern": "migrations/*.sql"}]}`,
			}),
		);
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain("wrangler.jsonc: $.d1_databases[0].migrations_pattern");
		expect(error.message).toContain("migrations_dir is not");
	});

	it("should refuse a migrations_pattern that is not under migrations_dir", () => {
		const error = userErrorOf(() =>
			load({
				"wrangler.jsonc": `{"name": "app", "env": {"prod": {"d1_databases": [
					{"binding": "DB", "migrations_dir": "db", "migrations_pattern": "migrations/*.sql"}
				]}}}`,
			}),
		);
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain(
			'$.env.prod.d1_databases[0].migrations_pattern: expected a glob starting with "db/", found "migrations/*.sql"',
		);
	});

	it("should accept a nested pattern under migrations_dir (drizzle-kit layout)", () => {
		const config = load({
			"wrangler.jsonc": `{"name": "app", "d1_databases": [
				{"binding": "DB", "migrations_dir": "./drizzle/", "migrations_pattern": "drizzle/*/migration.sql"}
			]}`,
		});
		const [db] = resolveEnvironment(config, undefined).databases;
		expect(db?.migrationsDir).toBe("drizzle");
		expect(db?.migrationsPattern).toBe("drizzle/*/migration.sql");
	});
});

describe("resolveEnvironment()", () => {
	const config = () => load({ "wrangler.jsonc": WRANGLER_WITH_ENVS });

	it("should apply defaults: migrations dir, ledger table and pattern", () => {
		const top = resolveEnvironment(config(), undefined);
		expect(top).toEqual({
			name: undefined,
			workerName: "app",
			databases: [
				{
					binding: "DB",
					databaseName: undefined,
					databaseId: "top-id",
					migrationsDir: "migrations",
					migrationsTable: "d1_migrations",
					migrationsPattern: "migrations/*.sql",
				},
			],
		});
	});

	it("should use the environment's own bindings, normalising migrations_dir", () => {
		const staging = resolveEnvironment(config(), "staging");
		expect(staging.workerName).toBe("app-staging");
		expect(
			staging.databases.map((d) => [d.databaseId, d.migrationsDir, d.migrationsPattern]),
		).toEqual([["staging-id", "db/migrations", "db/migrations/*.sql"]]);
	});

	it("should not inherit top-level D1 bindings into an env without d1_databases", () => {
		expect(resolveEnvironment(config(), "preview").databases).toEqual([]);
	});

	it("should keep an environment's explicit worker name and per-binding ledger table", () => {
		const multi = resolveEnvironment(config(), "multi");
		expect(multi.workerName).toBe("app-multi-custom");
		expect(multi.databases.map((d) => [d.binding, d.migrationsTable])).toEqual([
			["A", "d1_migrations"],
			["B", "ledger"],
		]);
	});

	it("should treat an empty env name as the top level", () => {
		expect(resolveEnvironment(config(), "").name).toBeUndefined();
	});

	it("should list the known environments for an unknown one", () => {
		const error = userErrorOf(() => resolveEnvironment(config(), "prod"));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain('Unknown environment "prod"');
		expect(error.message).toContain("Known environments: staging, preview, multi.");
	});

	it("should say there are no environments when the config defines none", () => {
		const error = userErrorOf(() =>
			resolveEnvironment(load({ "wrangler.jsonc": `{"name": "app"}` }), "staging"),
		);
		expect(error.message).toContain("defines no environments");
	});
});

describe("selectDatabase()", () => {
	const config = () => load({ "wrangler.jsonc": WRANGLER_WITH_ENVS });

	it("should pick the only binding without --binding", () => {
		const cfg = config();
		expect(selectDatabase(cfg, resolveEnvironment(cfg, "staging"), undefined).databaseId).toBe(
			"staging-id",
		);
	});

	it("should say D1 bindings are not inherited when an env has none", () => {
		const cfg = config();
		const error = userErrorOf(() =>
			selectDatabase(cfg, resolveEnvironment(cfg, "preview"), undefined),
		);
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain("env.preview.d1_databases has no D1 binding");
		expect(error.message).toContain("not inherited from the top level");
	});

	it("should not mention inheritance at the top level", () => {
		const cfg = load({ "wrangler.jsonc": `{"name": "app"}` });
		const error = userErrorOf(() =>
			selectDatabase(cfg, resolveEnvironment(cfg, undefined), undefined),
		);
		expect(error.message).toContain(": d1_databases has no D1 binding.");
		expect(error.message).not.toContain("inherited");
	});

	it("should name the environments that declare D1 when there is none at the top level", () => {
		const cfg = load({
			"wrangler.jsonc": `{"name": "app", "env": {
				"staging": { "d1_databases": [{ "binding": "DB", "database_id": "s" }] },
				"preview": {},
			}}`,
		});
		const error = userErrorOf(() =>
			selectDatabase(cfg, resolveEnvironment(cfg, undefined), undefined),
		);
		expect(error.message).toMatch(
			/: d1_databases has no D1 binding\. Without --env this is the top-level Worker \(as in wrangler\); D1 is declared for env\.staging: pass --env staging\.$/,
		);
	});

	it("should require --binding when there are several, listing them", () => {
		const cfg = config();
		const error = userErrorOf(() =>
			selectDatabase(cfg, resolveEnvironment(cfg, "multi"), undefined),
		);
		expect(error.code).toBe("E_USAGE");
		expect(error.message).toContain("has 2 D1 bindings (A, B); choose one with --binding");
	});

	it.each(["A", "B"])("should pick binding %s by name", (binding) => {
		const cfg = config();
		expect(selectDatabase(cfg, resolveEnvironment(cfg, "multi"), binding).binding).toBe(binding);
	});

	it("should refuse an unknown binding name, listing the known ones", () => {
		const cfg = config();
		const error = userErrorOf(() => selectDatabase(cfg, resolveEnvironment(cfg, "multi"), "C"));
		expect(error.message).toContain('no binding "C" (has: A, B)');
	});
});

describe("snapshotPathFor()", () => {
	it("should default to <migrations_dir>.schema.sql", () => {
		const cfg = load({ "wrangler.jsonc": WRANGLER_WITH_ENVS });
		const staging = selectDatabase(cfg, resolveEnvironment(cfg, "staging"), undefined);
		expect(snapshotPathFor(cfg, staging)).toBe("db/migrations.schema.sql");
	});

	// Beside the migrations directory; next to the config (as `.schema.sql`) when the directory holds it.
	it.each([
		{ dir: undefined, at: "", snapshot: "migrations.schema.sql" },
		{ dir: ".", at: "", snapshot: ".schema.sql" },
		{ dir: "./", at: "", snapshot: ".schema.sql" },
		{ dir: "db/sql/", at: "", snapshot: "db/sql.schema.sql" },
		// Found from a subdirectory (or --config ..): paths stay relative to where the CLI runs.
		{ dir: ".", at: "app/", snapshot: "../.schema.sql" },
		{ dir: "app", at: "app/", snapshot: "../app.schema.sql" },
		{ dir: "..", at: "app/", snapshot: ".schema.sql", config: "app/wrangler.jsonc" },
	])("migrations_dir $dir, config at $at: $snapshot", ({ dir, at, snapshot, config }) => {
		const root = project({});
		const wrangler = config ?? "wrangler.jsonc";
		mkdirSync(path.join(root, "app"));
		writeFileSync(
			path.join(root, wrangler),
			JSON.stringify({
				name: "app",
				d1_databases: [{ binding: "DB", ...(dir === undefined ? {} : { migrations_dir: dir }) }],
			}),
		);
		const cfg = loadProjectConfig({
			cwd: path.join(root, at),
			config: config ? "wrangler.jsonc" : undefined,
		});
		const db = selectDatabase(cfg, resolveEnvironment(cfg, undefined), undefined);
		expect(snapshotPathFor(cfg, db)).toBe(snapshot);
	});

	it('keeps the snapshot of migrations_dir "." out of wrangler\'s migrations and the catalog', async () => {
		const root = project({
			"wrangler.json": JSON.stringify({
				name: "app",
				d1_databases: [{ binding: "DB", database_name: "db", migrations_dir: "." }],
			}),
			"0001_init.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
		});
		const cfg = loadProjectConfig({ cwd: root });
		const db = selectDatabase(cfg, resolveEnvironment(cfg, undefined), undefined);
		writeFileSync(path.join(root, snapshotPathFor(cfg, db)), "CREATE TABLE a (id INTEGER);\n");
		expect(readCatalog({ root, database: db }).files.map((f) => f.name)).toEqual(["0001_init.sql"]);
		const home = path.join(root, ".home");
		const listed = await runWrangler({
			args: ["d1", "migrations", "list", "DB", "--local", "--persist-to", path.join(root, ".d1")],
			cwd: root,
			env: { PATH: process.env.PATH, HOME: home, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
			timeoutMs: 120_000,
		});
		expect(listed.exitCode, listed.stderr).toBe(0);
		expect(listed.stdout).toContain("0001_init.sql");
		expect(listed.stdout).not.toContain("schema");
	}, 130_000);

	it("should use migrations.snapshot from the settings when set", () => {
		const cfg = load({
			"wrangler.jsonc": WRANGLER_WITH_ENVS,
			"workers-pipeline.jsonc": `{"migrations": {"snapshot": {"migrations": "schema/d1.sql"}}}`,
		});
		const top = selectDatabase(cfg, resolveEnvironment(cfg, undefined), undefined);
		expect(snapshotPathFor(cfg, top)).toBe("schema/d1.sql");
	});

	it("should let one migrations.snapshot serve sets of one migrations dir (ledger tables apart)", () => {
		const cfg = load({
			"wrangler.jsonc": JSON.stringify({
				name: "app",
				d1_databases: [{ binding: "A" }, { binding: "B", migrations_table: "ledger" }],
				env: { production: { d1_databases: [{ binding: "A" }] } },
			}),
			"workers-pipeline.jsonc": `{"migrations": {"snapshot": "schema/d1.sql"}}`,
		});
		const b = selectDatabase(cfg, resolveEnvironment(cfg, undefined), "B");
		expect(snapshotPathFor(cfg, b)).toBe("schema/d1.sql");
	});

	// Two D1 bindings, each with its own migrations: the shape where one configured file would be
	// written by both sets and read as drift by each.
	const TWO_SETS = JSON.stringify({
		name: "app",
		d1_databases: [
			{ binding: "DB", database_id: "a", migrations_dir: "migrations" },
			{ binding: "AUTH", database_id: "b", migrations_dir: "db/auth" },
		],
	});
	const setsOf = (snapshot: unknown) => {
		const cfg = load({
			"wrangler.jsonc": TWO_SETS,
			"workers-pipeline.jsonc": JSON.stringify({ migrations: { snapshot } }),
		});
		const env = resolveEnvironment(cfg, undefined);
		return { cfg, db: selectDatabase(cfg, env, "DB"), auth: selectDatabase(cfg, env, "AUTH") };
	};

	it("should refuse one migrations.snapshot for two migration sets, naming both and the fix", () => {
		const { cfg, db } = setsOf("schema.sql");
		const error = userErrorOf(() => snapshotPathFor(cfg, db));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain('one file ("schema.sql") to 2 migration sets');
		expect(error.message).toContain("DB: migrations, AUTH: db/auth");
		expect(error.message).toContain(
			'"migrations": "migrations.schema.sql", "db/auth": "db/auth.schema.sql"',
		);
	});

	it("should take one snapshot per migrations dir, the default for a dir left out", () => {
		const { cfg, db, auth } = setsOf({ "db/auth/": "schema/auth.sql" });
		expect(snapshotPathFor(cfg, auth)).toBe("schema/auth.sql");
		expect(snapshotPathFor(cfg, db)).toBe("migrations.schema.sql");
	});

	it("should refuse a per-dir map that gives two sets one file", () => {
		const { cfg, auth } = setsOf({ migrations: "s.sql", "db/auth": "s.sql" });
		expect(userErrorOf(() => snapshotPathFor(cfg, auth)).message).toContain("to 2 migration sets");
	});
});

function escapeRegExp(text: string): string {
	return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("resolveAccountId()", () => {
	const config = (wrangler: string) => load({ "wrangler.jsonc": wrangler });
	const WITH_ACCOUNTS = `{"name": "app", "account_id": "top", "env": {"own": {"account_id": "own"}, "inherits": {}}}`;

	it.each([
		// config, env name, CLOUDFLARE_ACCOUNT_ID, expected
		[`{"name": "app"}`, undefined, "from-env", "from-env"],
		[`{"name": "app"}`, undefined, undefined, undefined],
		[WITH_ACCOUNTS, undefined, undefined, "top"],
		[WITH_ACCOUNTS, "inherits", undefined, "top"],
		[WITH_ACCOUNTS, "own", undefined, "own"],
		[WITH_ACCOUNTS, "own", "own", "own"],
		[WITH_ACCOUNTS, "inherits", "", "top"],
	])("%s, env %s, CLOUDFLARE_ACCOUNT_ID %j → %j", (wrangler, env, fromEnv, expected) => {
		expect(resolveAccountId(config(wrangler), env, fromEnv)).toBe(expected);
	});

	it.each([
		[undefined, "$.account_id: top"],
		["own", "$.env.own.account_id: own"],
	])("should refuse a CLOUDFLARE_ACCOUNT_ID that differs from the config (env %s)", (env, at) => {
		const error = userErrorOf(() => resolveAccountId(config(WITH_ACCOUNTS), env, "other"));
		expect(error.code).toBe("E_CONFIG_INVALID");
		expect(error.message).toContain("CLOUDFLARE_ACCOUNT_ID (other)");
		expect(error.message).toContain(at);
		expect(error.message).toContain("Nothing was sent");
	});

	it("should refuse an account_id that is not a string, with path and value", () => {
		const error = userErrorOf(() =>
			resolveAccountId(config(`{"name": "app", "account_id": 42}`), undefined, undefined),
		);
		expect(error.message).toContain("$.account_id: expected a non-empty string, found number 42");
	});
});

describe("lintEnvironment()", () => {
	const config = () => load({ "wrangler.jsonc": WRANGLER_WITH_ENVS });

	it("should warn that an environment without a name deploys a separate Worker", () => {
		expect(lintEnvironment(config(), "staging")).toEqual([
			expect.objectContaining({
				code: "CONFIG_ENV_UNNAMED",
				severity: "warning",
				file: "wrangler.jsonc",
				message: expect.stringContaining('separate Worker "app-staging"'),
			}),
		]);
	});

	it("should say nothing for a Pages project's environments (one project, never a new Worker)", () => {
		const pages = load({
			"wrangler.toml": 'name = "site"\npages_build_output_dir = "dist"\n[env.production]\n',
		});
		expect(lintEnvironment(pages, "production")).toEqual([]);
	});

	it.each([["multi"], [undefined]])(
		"should say nothing for env %s (named, or the top level)",
		(env) => {
			expect(lintEnvironment(config(), env)).toEqual([]);
		},
	);
});
