// The health handler against a real SQLite database behind the D1 statement API it uses
// (prepare → bind → first), with Request/Response as Node 24 provides them.
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { healthRoute } from "../../../ci/health/hono.ts";
import { handleHealth, judgeHealth, readVersionId } from "../../../ci/health/index.ts";

const VERSION = "3f2c5f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f";

/**
 * D1's `prepare().bind().first()` over better-sqlite3: the whole surface the handler queries, with
 * `batch` and `exec`, which every D1Database has (workers-types D1Database).
 */
function d1Of(db: Database.Database) {
	const statement = (sql: string, params: unknown[] = []) => ({
		bind: (...values: unknown[]) => statement(sql, values),
		first: async () => (db.prepare(sql).get(...params) as unknown) ?? null,
	});
	return {
		prepare: (sql: string) => statement(sql),
		batch: async () => [],
		exec: async (sql: string) => db.exec(sql),
	};
}

const databases: Database.Database[] = [];
function ledgerDb(names: string[], table = "d1_migrations") {
	const db = new Database(":memory:");
	databases.push(db);
	db.exec(
		`CREATE TABLE "${table}" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TEXT DEFAULT CURRENT_TIMESTAMP)`,
	);
	for (const name of names) db.prepare(`INSERT INTO "${table}" (name) VALUES (?)`).run(name);
	return db;
}
afterEach(() => {
	for (const db of databases.splice(0)) db.close();
});

const get = (method = "GET") => new Request("https://app.example/api/health", { method });
const envWith = (db: Database.Database | undefined, extra: Record<string, unknown> = {}) => ({
	...(db ? { DB: d1Of(db) } : {}),
	CF_VERSION_METADATA: { id: VERSION, tag: "", timestamp: "2026-12-01T00:00:00.000Z" },
	...extra,
});

describe("handleHealth()", () => {
	it("answers 200 with the version id, the ledger head and the expected head", async () => {
		const db = ledgerDb(["0001_init.sql", "0002_users.sql"]);
		const response = await handleHealth(
			get(),
			envWith(db, { WORKERS_PIPELINE_EXPECTED_HEAD: "0002_users.sql" }),
		);
		expect(response.status).toBe(200);
		expect(response.headers.get("cache-control")).toBe("no-store");
		expect(await response.json()).toEqual({
			status: "ok",
			version: VERSION,
			schema: { head: "0002_users.sql", expected: "0002_users.sql" },
			db: "ok",
		});
	});

	it.each([
		{
			case: "schema behind the expected migration",
			ledger: ["0001_init.sql"],
			expected: "0002_users.sql",
			status: 503,
			reason: "schema behind: head 0001_init.sql, expected 0002_users.sql",
		},
		{
			case: "schema ahead (a newer deploy migrated) with the expected one applied",
			ledger: ["0001_init.sql", "0002_users.sql", "0003_more.sql"],
			expected: "0002_users.sql",
			status: 200,
			reason: undefined,
		},
		{
			case: "names that are not numbered (drizzle-kit directories) compared by identity",
			ledger: ["20250101000000_init/migration.sql"],
			expected: "20250202000000_users/migration.sql",
			status: 503,
			reason:
				"schema behind: head 20250101000000_init/migration.sql, expected 20250202000000_users/migration.sql",
		},
		{
			case: "empty ledger",
			ledger: [],
			expected: "0001_init.sql",
			status: 503,
			reason: "no migrations applied, expected 0001_init.sql",
		},
		{
			case: "no expectation (local dev): reachable is healthy",
			ledger: ["0001_init.sql"],
			expected: undefined,
			status: 200,
			reason: undefined,
		},
	])("$case → $status", async ({ ledger, expected, status, reason }) => {
		const db = ledgerDb(ledger);
		const response = await handleHealth(
			get(),
			envWith(db, expected ? { WORKERS_PIPELINE_EXPECTED_HEAD: expected } : {}),
		);
		expect(response.status).toBe(status);
		const body = (await response.json()) as Record<string, unknown>;
		expect(body.reason).toBe(reason);
		expect(body.version).toBe(VERSION);
		expect(body.schema).toEqual({ head: ledger.at(-1) ?? null, expected: expected ?? null });
	});

	it("takes an app's own Env interface (as `wrangler types` writes it), not only a record", async () => {
		// An interface has no index signature: typed Record<string, unknown>, this call failed tsc
		// with TS2345 in the app (`npm run typecheck` covers this file).
		interface Env {
			DB: ReturnType<typeof d1Of>;
			CF_VERSION_METADATA: { id: string; tag: string; timestamp: string };
		}
		const env: Env = { ...envWith(ledgerDb(["0001_init.sql"])) } as Env;
		expect((await handleHealth(get(), env)).status).toBe(200);
		expect(readVersionId(env, "CF_VERSION_METADATA")).toBe(VERSION);
	});

	it("treats a database without a ledger table as reachable with nothing applied", async () => {
		const db = new Database(":memory:");
		databases.push(db);
		const response = await handleHealth(
			get(),
			envWith(db, { WORKERS_PIPELINE_EXPECTED_HEAD: "0001_init.sql" }),
		);
		expect(response.status).toBe(503);
		expect(await response.json()).toMatchObject({
			db: "ok",
			schema: { head: null },
			reason: "no migrations applied, expected 0001_init.sql",
		});
	});

	it("reads the Worker's only D1 binding when it has no DB, and asks for a name when there are several", async () => {
		const db = ledgerDb(["0001_init.sql"]);
		const { DB, ...rest } = envWith(db, { WORKERS_PIPELINE_EXPECTED_HEAD: "0001_init.sql" });
		// A KV namespace and an R2 bucket beside it: neither has prepare/batch/exec.
		const kv = { get: async () => null, put: async () => undefined };
		const r2 = { get: async () => null, head: async () => null };
		const sole = await handleHealth(get(), { ...rest, DATABASE: DB, CACHE: kv, FILES: r2 });
		expect(sole.status).toBe(200);
		expect(await sole.json()).toMatchObject({ schema: { head: "0001_init.sql" }, db: "ok" });

		const two = await handleHealth(get(), { ...rest, MAIN: DB, EVENTS: d1Of(ledgerDb([])) });
		expect(two.status).toBe(503);
		expect(((await two.json()) as { reason: string }).reason).toMatch(
			/the DB binding is missing \(with no DB binding, the health handler needs its D1 binding named: \{ binding: "<yours>" \}\)/,
		);
		// Named, it reads that one.
		const named = await handleHealth(
			get(),
			{ ...rest, MAIN: DB, EVENTS: d1Of(ledgerDb([])) },
			{
				binding: "MAIN",
			},
		);
		expect(named.status).toBe(200);
	});

	it("says the database is unreachable when the binding is missing or a query fails", async () => {
		const missing = await handleHealth(get(), envWith(undefined));
		expect(missing.status).toBe(503);
		expect(await missing.json()).toMatchObject({
			db: "error",
			reason: expect.stringMatching(/^database unreachable: the DB binding is missing/),
		});
		const broken = {
			prepare: () => ({
				bind: () => broken.prepare(),
				first: async () => {
					throw new Error("D1_ERROR: network connection lost");
				},
			}),
		};
		const failing = await handleHealth(get(), { ...envWith(undefined), DB: broken });
		expect(await failing.json()).toMatchObject({
			db: "error",
			reason: "database unreachable: D1_ERROR: network connection lost",
		});
	});

	it("names the missing version metadata binding", async () => {
		const db = ledgerDb(["0001_init.sql"]);
		const response = await handleHealth(get(), { DB: d1Of(db) });
		expect(response.status).toBe(503);
		expect(await response.json()).toMatchObject({
			status: "error",
			version: null,
			db: "ok",
			reason:
				'no version metadata: add "version_metadata": { "binding": "CF_VERSION_METADATA" } to the wrangler config',
		});
	});

	it("echoes the deployment token preview passes, and only when it passes one", async () => {
		const db = ledgerDb(["0001_init.sql"]);
		const withToken = await handleHealth(
			get(),
			envWith(db, { WORKERS_PIPELINE_DEPLOYMENT: "abc123-token" }),
		);
		expect(await withToken.json()).toMatchObject({ status: "ok", deployment: "abc123-token" });
		const unhealthy = await handleHealth(
			get(),
			envWith(db, {
				WORKERS_PIPELINE_DEPLOYMENT: "abc123-token",
				WORKERS_PIPELINE_EXPECTED_HEAD: "0002_x.sql",
			}),
		);
		expect(await unhealthy.json()).toMatchObject({ status: "error", deployment: "abc123-token" });
		const without = (await (await handleHealth(get(), envWith(db))).json()) as object;
		expect(without).not.toHaveProperty("deployment");
		const renamed = await handleHealth(get(), envWith(db, { TOKEN: "t-1" }), {
			deploymentVar: "TOKEN",
		});
		expect(await renamed.json()).toMatchObject({ deployment: "t-1" });
	});

	it("honours every option: binding, ledger table, version binding, expected var", async () => {
		const db = ledgerDb(["0001_a.sql", "0002_b.sql"], "schema_ledger");
		const env = {
			MAIN_DB: d1Of(db),
			VERSION: { id: VERSION },
			NEED: "0002_b.sql",
		};
		const options = {
			binding: "MAIN_DB",
			migrationsTable: "schema_ledger",
			versionBinding: "VERSION",
			expectedVar: "NEED",
		};
		const response = await handleHealth(get(), env, options);
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({
			schema: { head: "0002_b.sql", expected: "0002_b.sql" },
		});
		const defaults = await handleHealth(get(), env);
		expect(defaults.status).toBe(503);
	});

	it("reads a ledger whose name needs quoting, quoted as wrangler quotes migrations_table", async () => {
		const table = 'd1 migrations-"v2"';
		const db = new Database(":memory:");
		databases.push(db);
		const q = `"${table.replace(/"/g, '""')}"`;
		db.exec(`CREATE TABLE ${q} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE)`);
		db.prepare(`INSERT INTO ${q} (name) VALUES (?)`).run("0001_init.sql");
		db.exec("CREATE TABLE x (id INTEGER)");
		const response = await handleHealth(
			get(),
			envWith(db, { WORKERS_PIPELINE_EXPECTED_HEAD: "0001_init.sql" }),
			{ migrationsTable: table },
		);
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ schema: { head: "0001_init.sql" } });
		// A name that reads as SQL stays a name: no such table, nothing executed.
		const odd = await handleHealth(get(), envWith(db), {
			migrationsTable: 'd1_migrations"; DROP TABLE x; --',
		});
		expect(await odd.json()).toMatchObject({ schema: { head: null } });
		expect(db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'x'").get()).toEqual({
			n: 1,
		});
	});

	it("answers HEAD with the status and no body", async () => {
		const db = ledgerDb(["0001_init.sql"]);
		const response = await handleHealth(get("HEAD"), envWith(db));
		expect(response.status).toBe(200);
		expect(await response.text()).toBe("");
	});
});

describe("readVersionId()", () => {
	it.each([
		{ value: { id: VERSION, tag: "", timestamp: "" }, id: VERSION },
		{ value: { id: "" }, id: null },
		{ value: "not an object", id: null },
		{ value: undefined, id: null },
	])("$value → $id", ({ value, id }) => {
		expect(readVersionId({ CF_VERSION_METADATA: value }, "CF_VERSION_METADATA")).toBe(id);
	});
});

describe("judgeHealth()", () => {
	it("puts a missing version before the schema", () => {
		expect(
			judgeHealth({
				version: null,
				versionBinding: "V",
				head: null,
				expected: "x",
				hasExpected: false,
			}),
		).toMatch(/no version metadata/);
	});
});

describe("healthRoute() for Hono", () => {
	it("passes c.req.raw and c.env to the handler", async () => {
		const db = ledgerDb(["0001_init.sql"]);
		const route = healthRoute();
		const response = await route({ req: { raw: get() }, env: envWith(db) });
		expect(response.status).toBe(200);
		expect(((await response.json()) as { version: string }).version).toBe(VERSION);
	});
});

describe("createNextHealthRoute()", () => {
	it("answers 503 with the reason outside a Cloudflare context, never throws", async () => {
		const { createNextHealthRoute } = await import("../../../ci/health/next.ts");
		const response = await createNextHealthRoute().GET(get());
		expect(response.status).toBe(503);
		expect(((await response.json()) as { reason: string }).reason).toMatch(
			/^no Cloudflare context/,
		);
	});
});
