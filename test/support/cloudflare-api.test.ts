import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Cloudflare from "cloudflare";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
	type CloudflareApi,
	D1_NOT_AUTHORIZED_MESSAGE,
	D1_TRANSACTION_MESSAGE,
	type Fault,
	randomFaultHook,
	startCloudflareApi,
} from "./cloudflare-api.ts";
import { startWranglerLoopback, type WranglerProject } from "./wrangler-process.ts";

const TOKEN = "loopback-token-0123456789abcdef0123456789ab";
const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
const DB = { uuid: "6f7ac3a2-4c1b-4d8e-9f2a-1b2c3d4e5f60", name: "pipeline-db" };

const MIGRATIONS = {
	"0001_users.sql":
		"CREATE TABLE users (\n\tid INTEGER PRIMARY KEY,\n\temail TEXT NOT NULL UNIQUE\n);\n",
	"0002_posts.sql":
		"CREATE TABLE posts (\n\tid INTEGER PRIMARY KEY,\n\tuser_id INTEGER NOT NULL REFERENCES users(id)\n);\nCREATE INDEX posts_user ON posts(user_id);\n",
};

const tableNames = (api: CloudflareApi, uuid = DB.uuid) =>
	api
		.database(uuid)
		.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
		.pluck()
		.all();

describe("startCloudflareApi() with real wrangler", () => {
	let api: CloudflareApi;
	let project: WranglerProject;
	let initialBookmark: string;
	let initialBytes: Buffer;

	beforeAll(async () => {
		({ api, project } = await startWranglerLoopback({
			token: TOKEN,
			accountId: ACCOUNT_ID,
			databases: [DB],
			migrations: MIGRATIONS,
		}));
		initialBookmark = api.currentBookmark(DB.uuid);
		initialBytes = api.serialize(DB.uuid);
	});

	afterAll(async () => {
		await project?.dispose();
		await api?.close();
	});

	it("should list both migrations as pending", async () => {
		const run = await project.run(["d1", "migrations", "list", "DB", "--remote"]);
		expect(run.exitCode, run.stderr).toBe(0);
		expect(run.stdout).toContain("0001_users.sql");
		expect(run.stdout).toContain("0002_posts.sql");
	});

	it("should apply the migrations and record them in d1_migrations", async () => {
		const run = await project.run(["d1", "migrations", "apply", "DB", "--remote"]);
		expect(run.exitCode, run.stderr).toBe(0);
		expect(tableNames(api)).toEqual(expect.arrayContaining(["d1_migrations", "posts", "users"]));
		const ledger = api
			.database(DB.uuid)
			.prepare("SELECT name FROM d1_migrations ORDER BY id")
			.pluck()
			.all();
		expect(ledger).toEqual(["0001_users.sql", "0002_posts.sql"]);
		// wrangler sends each migration as one `/query` with its ledger INSERT appended.
		const migrationBodies = api.requests
			.filter((r) => r.path.endsWith("/query") && r.body?.includes("INSERT INTO"))
			.map((r) => JSON.parse(r.body ?? "{}").sql as string);
		expect(migrationBodies).toHaveLength(2);
		expect(migrationBodies[0]).toMatch(
			/CREATE TABLE users[\s\S]*INSERT INTO "d1_migrations" \(name\)\nvalues \('0001_users.sql'\);$/,
		);
	});

	it("should then report nothing pending", async () => {
		const run = await project.run(["d1", "migrations", "list", "DB", "--remote"]);
		expect(run.exitCode, run.stderr).toBe(0);
		expect(run.stdout).toContain("No migrations to apply");
	});

	it("should fail `BEGIN TRANSACTION` with D1's error and change nothing", async () => {
		const before = api.serialize(DB.uuid);
		const run = await project.run([
			"d1",
			"execute",
			"DB",
			"--remote",
			"--command",
			"BEGIN TRANSACTION",
		]);
		expect(run.exitCode).not.toBe(0);
		const output = run.stdout + run.stderr;
		expect(output).toContain(`${D1_TRANSACTION_MESSAGE} [code: 7500]`);
		expect(api.serialize(DB.uuid).equals(before)).toBe(true);
	});

	it("should import a SQL file through `d1 execute --file`", async () => {
		const file = join(project.dir, "seed.sql");
		await writeFile(
			file,
			"INSERT INTO users (email) VALUES ('a@example.com');\nINSERT INTO posts (user_id) VALUES (1);\n",
		);
		const run = await project.run(["d1", "execute", "DB", "--remote", "--file", file, "--yes"]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(run.stdout).toContain("Executed 2 queries");
		expect(api.database(DB.uuid).prepare("SELECT email FROM users").pluck().all()).toEqual([
			"a@example.com",
		]);
	});

	it("should export through the polling flow and the signed URL", async () => {
		const output = join(project.dir, "export.sql");
		const run = await project.run(["d1", "export", "DB", "--remote", "--output", output, "-y"]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		const dump = await readFile(output, "utf8");
		expect(dump).toContain("CREATE TABLE users");
		expect(dump).toContain(`INSERT INTO "users" ("id","email") VALUES(1,'a@example.com');`);
		expect(dump).toContain("CREATE INDEX posts_user ON posts(user_id);");
	});

	it("should restore a bookmark byte-for-byte through `d1 time-travel restore`", async () => {
		const run = await project.run([
			"d1",
			"time-travel",
			"restore",
			"DB",
			`--bookmark=${initialBookmark}`,
			"--json",
		]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(JSON.parse(run.stdout)).toMatchObject({ bookmark: initialBookmark });
		expect(api.serialize(DB.uuid).equals(initialBytes)).toBe(true);
	});

	it("should authenticate `whoami` and never hit an unknown route", async () => {
		const run = await project.run(["whoami"]);
		expect(run.exitCode, run.stderr).toBe(0);
		expect(run.stdout).toContain(ACCOUNT_ID);
		expect(api.unknownRoutes).toEqual([]);
	});
});

describe("startCloudflareApi() with the cloudflare SDK", () => {
	let api: CloudflareApi;
	let client: Cloudflare;
	const unknown: string[] = [];

	const query = async (sql: string, params?: string[]) =>
		(
			await client.d1.database.query(DB.uuid, {
				account_id: ACCOUNT_ID,
				sql,
				...(params && { params }),
			})
		).result;

	// Resolves to the SDK error a failing call throws, for assertions on status and envelope.
	const failure = async (promise: Promise<unknown>) => {
		try {
			await promise;
		} catch (error) {
			return error as InstanceType<typeof Cloudflare.APIError>;
		}
		throw new Error("expected the call to fail");
	};

	const d1Error = async (sql: string) => {
		const error = await failure(query(sql));
		expect(error).toBeInstanceOf(Cloudflare.APIError);
		expect(error.status).toBe(400);
		expect(error.errors).toHaveLength(1);
		return error.errors[0] as { code: number; message: string };
	};

	beforeEach(async () => {
		api = await startCloudflareApi({
			token: TOKEN,
			accountId: ACCOUNT_ID,
			databases: [DB],
			log: (line) => unknown.push(line),
		});
		client = new Cloudflare({ apiToken: TOKEN, baseURL: api.url, maxRetries: 0 });
		api
			.database(DB.uuid)
			.exec(
				"CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE); CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id));",
			);
	});

	afterEach(async () => {
		await api.close();
	});

	it("should return one result per statement with D1's meta", async () => {
		const results = await query(
			"INSERT INTO users (email) VALUES ('a@example.com'); SELECT id, email FROM users; SELECT count(*) AS n FROM posts",
		);
		expect(results).toHaveLength(3);
		expect(results[0]?.meta).toMatchObject({
			changes: 1,
			last_row_id: 1,
			changed_db: true,
			rows_written: 1,
		});
		expect(results[1]).toMatchObject({
			success: true,
			results: [{ id: 1, email: "a@example.com" }],
		});
		expect(results[2]?.results).toEqual([{ n: 0 }]);
		expect(results[2]?.meta).toMatchObject({ changed_db: false, served_by_primary: true });
		expect(results[2]?.meta?.size_after).toBeGreaterThan(0);
	});

	it("should list databases by name and describe one by id", async () => {
		api.addDatabase({ uuid: "0c7e1f5a-0000-4000-8000-000000000002", name: "other-db" });
		const page = await client.d1.database.list({ account_id: ACCOUNT_ID, name: "pipeline" });
		expect(page.result.map((d) => d.uuid)).toEqual([DB.uuid]);
		const info = await client.d1.database.get(DB.uuid, { account_id: ACCOUNT_ID });
		expect(info).toMatchObject({
			uuid: DB.uuid,
			name: DB.name,
			num_tables: 2,
			version: "production",
		});
	});

	it("should bind params to the statement and answer `raw` with columns and rows", async () => {
		await query("INSERT INTO users (email) VALUES (?)", ["b@example.com"]);
		const raw = await client.d1.database.raw(DB.uuid, {
			account_id: ACCOUNT_ID,
			sql: "SELECT id, email FROM users WHERE email = ?",
			params: ["b@example.com"],
		});
		expect(raw.result[0]?.results).toEqual({
			columns: ["id", "email"],
			rows: [[1, "b@example.com"]],
		});
	});

	it("should run the batch form as one atomic request", async () => {
		const error = await failure(
			client.d1.database.query(DB.uuid, {
				account_id: ACCOUNT_ID,
				batch: [
					{ sql: "INSERT INTO users (email) VALUES (?)", params: ["c@example.com"] },
					{ sql: "INSERT INTO users (email) VALUES (?)", params: ["c@example.com"] },
				],
			}),
		);
		expect(error.errors[0]).toEqual({
			code: 7500,
			message: "UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT",
		});
		expect(api.database(DB.uuid).prepare("SELECT count(*) FROM users").pluck().get()).toBe(0);
	});

	it("should apply a multi-statement sql string all or nothing", async () => {
		const before = api.serialize(DB.uuid);
		const error = await d1Error(
			"CREATE TABLE audit (x TEXT); INSERT INTO users (email) VALUES ('d@example.com'); INSERT INTO users (email) VALUES ('d@example.com');",
		);
		expect(error).toEqual({
			code: 7500,
			message: "UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT",
		});
		expect(tableNames(api)).not.toContain("audit");
		expect(api.serialize(DB.uuid).equals(before)).toBe(true);
	});

	it("should enforce foreign keys even after `PRAGMA foreign_keys = OFF`", async () => {
		expect(await d1Error("INSERT INTO posts (user_id) VALUES (42)")).toEqual({
			code: 7500,
			message: "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT",
		});
		expect(
			(await d1Error("PRAGMA foreign_keys = OFF; INSERT INTO posts (user_id) VALUES (42);"))
				.message,
		).toBe("FOREIGN KEY constraint failed: SQLITE_CONSTRAINT");
		// defer_foreign_keys lets a request break a reference as long as it is whole again at commit.
		await query(
			"PRAGMA defer_foreign_keys = ON; INSERT INTO posts (user_id) VALUES (7); INSERT INTO users (id, email) VALUES (7, 'e@example.com');",
		);
		expect(
			(await d1Error("PRAGMA defer_foreign_keys = ON; INSERT INTO posts (user_id) VALUES (8);"))
				.message,
		).toBe("FOREIGN KEY constraint failed: SQLITE_CONSTRAINT");
		expect(api.database(DB.uuid).prepare("SELECT user_id FROM posts").pluck().all()).toEqual([7]);
	});

	it.each([
		["BEGIN TRANSACTION", D1_TRANSACTION_MESSAGE],
		["BEGIN", D1_TRANSACTION_MESSAGE],
		["COMMIT", D1_TRANSACTION_MESSAGE],
		["END", D1_TRANSACTION_MESSAGE],
		["ROLLBACK", D1_TRANSACTION_MESSAGE],
		["SAVEPOINT sp", D1_TRANSACTION_MESSAGE],
		["RELEASE sp", D1_TRANSACTION_MESSAGE],
		["INSERT INTO users (email) VALUES ('x'); COMMIT;", D1_TRANSACTION_MESSAGE],
		["PRAGMA journal_mode = WAL", D1_NOT_AUTHORIZED_MESSAGE],
		["PRAGMA writable_schema = 1", D1_NOT_AUTHORIZED_MESSAGE],
		["PRAGMA user_version = 3", D1_NOT_AUTHORIZED_MESSAGE],
		["PRAGMA temp.table_list", D1_NOT_AUTHORIZED_MESSAGE],
		["PRAGMA table_info(_cf_KV)", D1_NOT_AUTHORIZED_MESSAGE],
		["CREATE TABLE _cf_mine (x)", D1_NOT_AUTHORIZED_MESSAGE],
		["CREATE TEMP TABLE scratch (x)", D1_NOT_AUTHORIZED_MESSAGE],
		["ATTACH DATABASE 'other.db' AS other", D1_NOT_AUTHORIZED_MESSAGE],
		["CREATE VIRTUAL TABLE notes USING fts4(body)", D1_NOT_AUTHORIZED_MESSAGE],
	])("should refuse %j like D1", async (sql, message) => {
		const before = api.serialize(DB.uuid);
		expect(await d1Error(sql)).toEqual({ code: 7500, message });
		expect(api.serialize(DB.uuid).equals(before)).toBe(true);
	});

	it.each([
		"PRAGMA table_list",
		"PRAGMA table_info(users)",
		"PRAGMA main.index_list('posts')",
		"PRAGMA foreign_keys = ON",
		"PRAGMA defer_foreign_keys = true",
		"PRAGMA foreign_key_check",
		"PRAGMA quick_check",
		"PRAGMA optimize",
		"CREATE VIRTUAL TABLE docs USING fts5(body)",
		"CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1)",
	])("should allow %j like D1", async (sql) => {
		expect(await query(sql)).toHaveLength(1);
	});

	it("should report syntax errors with D1's offset and code", async () => {
		// A migration without a final `;` fails once wrangler appends its ledger INSERT.
		const sql =
			"CREATE TABLE tags (name TEXT)\nINSERT INTO \"d1_migrations\" (name)\nvalues ('0003_tags.sql');";
		expect(await d1Error(sql)).toEqual({
			code: 7500,
			message: 'near "INSERT": syntax error at offset 30: SQLITE_ERROR',
		});
		expect((await d1Error("SELECT 1; SELEC 2")).message).toBe(
			'near "SELEC": syntax error at offset 0: SQLITE_ERROR',
		);
		expect((await d1Error("SELECT nope FROM users")).message).toBe(
			"no such column: nope at offset 7: SQLITE_ERROR",
		);
		expect((await d1Error("SELECT * FROM missing")).message).toBe(
			"no such table: missing: SQLITE_ERROR",
		);
		expect((await d1Error("CREATE TABLE t (x")).message).toBe("incomplete input: SQLITE_ERROR");
	});

	it("should keep a trigger body's semicolons inside one statement", async () => {
		const results = await query(
			"CREATE TABLE log (email TEXT);\nCREATE TRIGGER users_log AFTER INSERT ON users BEGIN\n\tINSERT INTO log VALUES (new.email);\n\tINSERT INTO log VALUES (upper(new.email));\nEND;\nINSERT INTO users (email) VALUES ('t@example.com');",
		);
		expect(results).toHaveLength(3);
		expect(api.database(DB.uuid).prepare("SELECT email FROM log").pluck().all()).toEqual([
			"t@example.com",
			"T@EXAMPLE.COM",
		]);
	});

	it("should only bind params to the last statement", async () => {
		expect((await d1Error("SELECT ?; SELECT 1")).message).toBe(
			"When executing multiple SQL statements in a single call, only the last statement can have parameters.",
		);
		const results = await query("SELECT 1 AS one; SELECT ? AS two", ["2"]);
		expect(results[1]?.results).toEqual([{ two: "2" }]);
	});

	it("should give every committed write a bookmark and restore one byte-for-byte", async () => {
		const tt = client.d1.database.timeTravel;
		const first = (await tt.getBookmark(DB.uuid, { account_id: ACCOUNT_ID })).bookmark ?? "";
		const firstBytes = api.serialize(DB.uuid);
		await query("SELECT count(*) FROM users");
		expect((await tt.getBookmark(DB.uuid, { account_id: ACCOUNT_ID })).bookmark).toBe(first);
		await query("INSERT INTO users (email) VALUES ('f@example.com')");
		const second = (await tt.getBookmark(DB.uuid, { account_id: ACCOUNT_ID })).bookmark ?? "";
		const secondBytes = api.serialize(DB.uuid);
		expect(second).not.toBe(first);

		const restored = await tt.restore(DB.uuid, { account_id: ACCOUNT_ID, bookmark: first });
		expect(restored).toMatchObject({ bookmark: first, previous_bookmark: second });
		expect(api.serialize(DB.uuid).equals(firstBytes)).toBe(true);

		const undone = await tt.restore(DB.uuid, {
			account_id: ACCOUNT_ID,
			bookmark: restored.previous_bookmark ?? "",
		});
		expect(undone.bookmark).toBe(second);
		expect(api.serialize(DB.uuid).equals(secondBytes)).toBe(true);
	});

	it("should export the state pinned at the first poll's bookmark", async () => {
		await query("INSERT INTO users (email) VALUES ('g@example.com')");
		const started = await client.d1.database.export(DB.uuid, {
			account_id: ACCOUNT_ID,
			output_format: "polling",
		});
		expect(started).toMatchObject({ success: true, status: "active" });
		// While the export runs, D1 refuses every other query (workers-sdk#9519).
		await expect(query("INSERT INTO users (email) VALUES ('later@example.com')")).rejects.toThrow(
			/Currently processing a long-running export/,
		);
		const done = await client.d1.database.export(DB.uuid, {
			account_id: ACCOUNT_ID,
			output_format: "polling",
			current_bookmark: started.at_bookmark ?? "",
		});
		expect(done).toMatchObject({ status: "complete", at_bookmark: started.at_bookmark });
		const dump = await (await fetch(done.result?.signed_url ?? "")).text();
		expect(dump).toContain(`INSERT INTO "users" ("id","email") VALUES(1,'g@example.com');`);
		expect(dump).not.toContain("later@example.com");
	});

	it("should reject a wrong token with 401 and another account with 403", async () => {
		const stranger = new Cloudflare({ apiToken: "wrong-token", baseURL: api.url, maxRetries: 0 });
		const wrong = await failure(
			stranger.d1.database.query(DB.uuid, { account_id: ACCOUNT_ID, sql: "SELECT 1" }),
		);
		expect(wrong).toBeInstanceOf(Cloudflare.AuthenticationError);
		expect(wrong.errors[0]).toMatchObject({ code: 9109 });
		const other = await failure(
			client.d1.database.query(DB.uuid, {
				account_id: "ffffffffffffffffffffffffffffffff",
				sql: "SELECT 1",
			}),
		);
		expect(other).toBeInstanceOf(Cloudflare.PermissionDeniedError);
		expect(other.errors[0]).toMatchObject({ code: 10000 });
		const anonymous = await fetch(`${api.url}/accounts/${ACCOUNT_ID}/d1/database`);
		expect(anonymous.status).toBe(400);
		expect(await anonymous.json()).toMatchObject({ success: false, errors: [{ code: 9106 }] });
	});

	it("should answer unknown routes with a 404 envelope and record them", async () => {
		const response = await fetch(`${api.url}/zones`, {
			headers: { authorization: `Bearer ${TOKEN}` },
		});
		expect(response.status).toBe(404);
		expect(await response.json()).toMatchObject({ success: false, errors: [{ code: 7003 }] });
		expect(api.unknownRoutes).toEqual(["GET /client/v4/zones"]);
	});

	describe("fault injection", () => {
		const insert = (email: string) => query("INSERT INTO users (email) VALUES (?)", [email]);
		const emails = () =>
			api.database(DB.uuid).prepare("SELECT email FROM users ORDER BY id").pluck().all();

		it("should answer a status fault without executing", async () => {
			api.faults.enqueue({ kind: "status", status: 503 });
			const error = await failure(insert("h@example.com"));
			expect(error).toBeInstanceOf(Cloudflare.InternalServerError);
			expect(error.status).toBe(503);
			expect(error.errors[0]).toMatchObject({ code: 7500 });
			expect(emails()).toEqual([]);
			api.faults.enqueue({
				kind: "status",
				status: 400,
				d1Code: 7400,
				message: "The request is malformed",
			});
			expect((await failure(insert("h@example.com"))).errors[0]).toEqual({
				code: 7400,
				message: "The request is malformed",
			});
		});

		it("should delay and then execute", async () => {
			api.faults.enqueue({ kind: "delay", ms: 150 });
			const started = performance.now();
			await insert("i@example.com");
			expect(performance.now() - started).toBeGreaterThanOrEqual(140);
			expect(emails()).toEqual(["i@example.com"]);
		});

		it("should reset before executing: nothing is committed", async () => {
			const bookmark = api.currentBookmark(DB.uuid);
			api.faults.enqueue({ kind: "reset-before" });
			expect(await failure(insert("j@example.com"))).toBeInstanceOf(Cloudflare.APIConnectionError);
			expect(emails()).toEqual([]);
			expect(api.currentBookmark(DB.uuid)).toBe(bookmark);
		});

		it("should reset after committing: the write happened but no answer came", async () => {
			const bookmark = api.currentBookmark(DB.uuid);
			api.faults.enqueue({ kind: "reset-after" });
			expect(await failure(insert("k@example.com"))).toBeInstanceOf(Cloudflare.APIConnectionError);
			expect(emails()).toEqual(["k@example.com"]);
			expect(api.currentBookmark(DB.uuid)).not.toBe(bookmark);
			expect(api.requests.at(-1)).toMatchObject({ status: 0, fault: "reset-after" });
		});

		it("should consume a queued rule only on the request it matches", async () => {
			api.faults.enqueue({
				fault: { kind: "status", status: 500 },
				method: "GET",
				path: "/time_travel/bookmark",
			});
			await insert("l@example.com");
			expect(api.faults.pending).toBe(1);
			const error = await failure(
				client.d1.database.timeTravel.getBookmark(DB.uuid, { account_id: ACCOUNT_ID }),
			);
			expect(error.status).toBe(500);
			expect(api.faults.pending).toBe(0);
		});

		it("should replay a seeded random fault run: rows exist exactly for executed requests", async () => {
			const seed = 20261122;
			api.setFaultHook(
				randomFaultHook({ seed, rate: 0.5, match: (r) => r.path.endsWith("/query") }),
			);
			const outcomes = new Map<string, string>();
			for (let i = 0; i < 40; i++) {
				const email = `user${i}@example.com`;
				try {
					await insert(email);
					outcomes.set(email, "ok");
				} catch (error) {
					outcomes.set(email, error instanceof Cloudflare.APIConnectionError ? "reset" : "status");
				}
			}
			const faultFor = new Map<string, Fault>(
				api.faults.injected.map(({ request, fault }) => [
					JSON.parse(request.body ?? "{}").params[0],
					fault,
				]),
			);
			const executed = [...outcomes.keys()].filter((email) => {
				const kind = faultFor.get(email)?.kind;
				return kind === undefined || kind === "delay" || kind === "reset-after";
			});
			expect(emails(), `seed ${seed}`).toEqual(executed);
			for (const [email, outcome] of outcomes) {
				const kind = faultFor.get(email)?.kind;
				const expected = kind === "status" ? "status" : kind?.startsWith("reset") ? "reset" : "ok";
				expect(outcome, `${email} (seed ${seed})`).toBe(expected);
			}
			expect(new Set(api.faults.injected.map((f) => f.fault.kind)).size).toBeGreaterThanOrEqual(4);
		});
	});
});
