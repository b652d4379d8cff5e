// D1's documented limits on the loopback API, each reached quickly through `limits` and `now`.
import { randomUUID } from "node:crypto";
import Cloudflare from "cloudflare";
import { afterEach, describe, expect, it } from "vitest";
import {
	type CloudflareApi,
	D1_TRANSIENT_ERRORS,
	type D1Limits,
	startCloudflareApi,
} from "./cloudflare-api.ts";

const TOKEN = "loopback-token-limits-0123456789";
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const apis: CloudflareApi[] = [];
afterEach(async () => {
	for (const api of apis.splice(0)) await api.close();
});

async function setup(limits: Partial<D1Limits> = {}, now?: () => number) {
	const uuid = randomUUID();
	const api = await startCloudflareApi({
		token: TOKEN,
		accountId: ACCOUNT,
		databases: [{ uuid, name: "limits" }],
		limits,
		now,
		log: () => {},
	});
	apis.push(api);
	const base = `${api.url}/accounts/${ACCOUNT}/d1/database/${uuid}`;
	const call = async (path: string, init: { method?: string; body?: unknown } = {}) => {
		const response = await fetch(`${base}${path}`, {
			method: init.method ?? (init.body ? "POST" : "GET"),
			headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
			body: init.body ? JSON.stringify(init.body) : undefined,
		});
		return {
			status: response.status,
			retryAfter: response.headers.get("retry-after"),
			body: (await response.json()) as {
				success: boolean;
				errors: { code: number; message: string }[];
				result: { bookmark?: string; status?: string; at_bookmark?: string } & Record<
					string,
					unknown
				>;
			},
		};
	};
	const query = (sql: string) => call("/query", { body: { sql } });
	return { api, uuid, call, query };
}

describe("rate limiting", () => {
	it("answers 429 with Retry-After and code 10100 past the quota, and blocks for the whole block time", async () => {
		let t = 1_000_000;
		const { query } = await setup(
			{ rateLimit: { requests: 3, windowMs: 60_000, blockMs: 120_000 } },
			() => t,
		);
		for (let i = 0; i < 3; i++) expect((await query("SELECT 1;")).status).toBe(200);
		const limited = await query("SELECT 1;");
		expect(limited.status).toBe(429);
		expect(limited.body.errors[0]?.code).toBe(10100);
		expect(limited.retryAfter).toBe("120");
		t += 60_000; // a minute later: still blocked, and told how much longer
		const still = await query("SELECT 1;");
		expect(still.status).toBe(429);
		expect(still.retryAfter).toBe("60");
		t += 60_001;
		expect((await query("SELECT 1;")).status).toBe(200);
	});
});

describe("the 30 s request limit (per request, the whole batch)", () => {
	it("fails a request that runs past it as a reset, with nothing of it committed", async () => {
		const { api, uuid, query } = await setup({ requestMs: 5 });
		// Not through a request: on a loaded machine even a CREATE TABLE can take 5 ms.
		api.database(uuid).exec("CREATE TABLE t (v INTEGER);");
		const slow = await query(
			"INSERT INTO t VALUES (1);\nWITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500000) SELECT count(*) FROM n;",
		);
		expect(slow.status, JSON.stringify(slow.body)).toBe(500);
		expect(slow.body.errors[0]?.message).toBe(`D1_ERROR: ${D1_TRANSIENT_ERRORS.timeoutReset}`);
		expect(api.database(uuid).prepare("SELECT count(*) FROM t").pluck().get()).toBe(0);
	});
});

describe("Time Travel", () => {
	it("allows at most 10 restores per 10 minutes per database", async () => {
		let t = 5_000_000;
		const { call } = await setup({}, () => t);
		const { body } = await call("/time_travel/bookmark");
		const bookmark = body.result.bookmark as string;
		for (let i = 0; i < 10; i++) {
			expect(
				(await call(`/time_travel/restore?bookmark=${bookmark}`, { method: "POST" })).status,
			).toBe(200);
		}
		const eleventh = await call(`/time_travel/restore?bookmark=${bookmark}`, { method: "POST" });
		expect(eleventh.status).toBe(429);
		expect(eleventh.body.errors[0]?.message).toMatch(/at most 10 per 10 minutes/);
		t += 10 * 60_000 + 1;
		expect(
			(await call(`/time_travel/restore?bookmark=${bookmark}`, { method: "POST" })).status,
		).toBe(200);
	});

	it.each([
		["paid", 29, 200],
		["paid", 31, 400],
		["free", 6, 200],
		["free", 8, 400],
	] as const)(
		"keeps bookmarks on the %s plan: %i days old → HTTP %i",
		async (plan, days, status) => {
			let t = 10_000_000_000;
			const { call } = await setup({ plan }, () => t);
			const bookmark = (await call("/time_travel/bookmark")).body.result.bookmark as string;
			t += days * 24 * 60 * 60_000;
			expect(
				(await call(`/time_travel/restore?bookmark=${bookmark}`, { method: "POST" })).status,
			).toBe(status);
		},
	);

	it("cancels a query in flight across a restore", async () => {
		const { api, call, query } = await setup();
		await query("CREATE TABLE t (v INTEGER);");
		const bookmark = (await call("/time_travel/bookmark")).body.result.bookmark as string;
		api.faults.enqueue({ fault: { kind: "delay", ms: 200 }, path: "/query" });
		const inFlight = query("INSERT INTO t VALUES (1);");
		await new Promise((resolve) => setTimeout(resolve, 50));
		expect(
			(await call(`/time_travel/restore?bookmark=${bookmark}`, { method: "POST" })).status,
		).toBe(200);
		const cancelled = await inFlight;
		expect(cancelled.status).toBe(500);
		expect(cancelled.body.errors[0]?.message).toMatch(/restored while this query was in flight/);
	});
});

describe("export", () => {
	it("refuses a database with virtual tables, which then refuses queries for a long time", async () => {
		let t = 1_000;
		const { query, call } = await setup({ exportBlockMs: 60_000 }, () => t);
		await query("CREATE VIRTUAL TABLE docs USING fts5(body);");
		const exported = await call("/export", { body: { output_format: "polling" } });
		expect(exported.body.result).toMatchObject({
			status: "error",
			error: "cannot export databases with Virtual Tables (fts5)",
		});
		const blocked = await query("SELECT 1;");
		expect(blocked.body.errors[0]?.message).toBe(
			"D1_ERROR: Currently processing a long-running export.",
		);
		t += 60_001;
		expect((await query("SELECT 1;")).status).toBe(200);
	});

	it("blocks other queries while it runs", async () => {
		const { query, call } = await setup();
		await query("CREATE TABLE t (v INTEGER);");
		const started = await call("/export", { body: { output_format: "polling" } });
		expect(started.body.result.status).toBe("active");
		expect((await query("SELECT 1;")).body.errors[0]?.message).toMatch(/long-running export/);
		const done = await call("/export", {
			body: { output_format: "polling", current_bookmark: started.body.result.at_bookmark },
		});
		expect(done.body.result.status).toBe("complete");
		expect((await query("SELECT 1;")).status).toBe(200);
	});
});

describe("transient errors", () => {
	it.each(Object.values(D1_TRANSIENT_ERRORS))("injects %j with D1's shape", async (message) => {
		const { api, uuid } = await setup();
		api.faults.enqueue({
			kind: "status",
			status: 500,
			d1Code: 7500,
			message: `D1_ERROR: ${message}`,
		});
		const client = new Cloudflare({ apiToken: TOKEN, baseURL: api.url, maxRetries: 0 });
		const error = await client.d1.database
			.query(uuid, { account_id: ACCOUNT, sql: "SELECT 1;" })
			.catch((e: unknown) => e);
		expect(error).toMatchObject({
			status: 500,
			errors: [{ code: 7500, message: `D1_ERROR: ${message}` }],
		});
	});
});
