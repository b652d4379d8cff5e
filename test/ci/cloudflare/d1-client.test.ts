// Cloudflare API envelopes → D1ApiError, and which failures are "no clear answer".
import { getEventListeners } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import {
	ApiFailure,
	D1Client,
	type D1ClientOptions,
	D1RateLimitError,
	formatRetryAfter,
	isAmbiguous,
	NoAnswer,
	parseRetryAfter,
	readRetryDelayMs,
	sleep,
	toD1ApiError,
} from "../../../ci/cloudflare/d1-client.ts";
import { D1ApiError } from "../../../ci/errors.ts";

const envelope = (code: number, message: string) => ({
	success: false,
	errors: [{ code, message }],
	messages: [],
	result: null,
});
const apiError = (
	status: number,
	code: number,
	message: string,
	headers: Record<string, string> = {},
) => new ApiFailure(status, envelope(code, message), new Headers(headers));

describe("toD1ApiError()", () => {
	it.each([
		[
			400,
			7500,
			"no such table: x: SQLITE_ERROR",
			/query failed \(HTTP 400\) \[7500\]: no such table/,
			"",
		],
		[
			401,
			9109,
			"Invalid access token",
			/\[9109\]: Invalid access token/,
			"check CLOUDFLARE_API_TOKEN",
		],
		[403, 10000, "Authentication error", /\(HTTP 403\)/, "no access to this account"],
		[404, 7404, "The database x could not be found", /\[7404\]/, "check database_id"],
		[500, 7500, "internal error", /\(HTTP 500\)/, ""],
	])("HTTP %i / code %i keeps D1's code and message", (status, code, message, pattern, hint) => {
		const error = toD1ApiError(apiError(status, code, message), "query");
		expect(error).toBeInstanceOf(D1ApiError);
		expect(error.status).toBe(status);
		expect(error.d1Code).toBe(code);
		expect(error.message).toMatch(pattern);
		if (hint) expect(error.message).toContain(hint);
	});

	it("names the URL it tried when no answer came back", () => {
		const error = toD1ApiError(
			new NoAnswer("Connection error.", {
				cause: Object.assign(new TypeError("fetch failed"), {
					cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
				}),
			}),
			"query",
			"http://127.0.0.1:9/client/v4/accounts/a/d1/database/d/query",
		);
		expect(error.status).toBeUndefined();
		expect(error.message).toContain(
			"at http://127.0.0.1:9/client/v4/accounts/a/d1/database/d/query",
		);
		expect(error.message).toContain("(Connection error: ECONNREFUSED)");
		expect(isAmbiguous(error)).toBe(true);
	});

	it("says when to retry a rate limit, from Retry-After", () => {
		const error = toD1ApiError(
			apiError(429, 10100, "Rate limited", { "retry-after": "120" }),
			"query",
		);
		expect(error).toBeInstanceOf(D1RateLimitError);
		expect((error as D1RateLimitError).retryAfterMs).toBe(120_000);
		expect(error.message).toMatch(
			/rate limited .*\[10100\].*retry in 120 s \(at \d\d:\d\d:\d\d UTC\)/,
		);
	});

	it.each([new TypeError("x is not a function"), new RangeError("bad")])(
		"rethrows %s unchanged: a bug is not a D1 answer",
		(bug) => {
			expect(() => toD1ApiError(bug, "query")).toThrow(bug);
		},
	);
});

describe("readRetryDelayMs()", () => {
	it.each([
		[0, {}, 500 * 0.75, 500],
		[2, {}, 2000 * 0.75, 2000],
		[6, {}, 8000 * 0.75, 8000],
		[0, { "retry-after": "3" }, 3000, 3000],
		[0, { "retry-after-ms": "120" }, 120, 120],
		// A minute or more is not waited out here (the caller decides, see MAX_RETRY_AFTER_MS).
		[1, { "retry-after": "90" }, 1000 * 0.75, 1000],
	])("retry %i with %j waits %d–%d ms", (n, headers, low, high) => {
		for (const random of [() => 0, () => 0.999]) {
			const ms = readRetryDelayMs(n, new Headers(headers), random);
			expect(ms).toBeGreaterThanOrEqual(low);
			expect(ms).toBeLessThanOrEqual(high);
		}
	});
});

describe("isAmbiguous()", () => {
	it.each([
		["no status (timeout, reset)", new D1ApiError("no answer"), true],
		["HTTP 500", new D1ApiError("x", { status: 500 }), true],
		["HTTP 503", new D1ApiError("x", { status: 503 }), true],
		["HTTP 429 without Cloudflare's rate-limit shape", new D1ApiError("x", { status: 429 }), true],
		[
			"a rate limit (refused before D1 ran)",
			new D1RateLimitError("x", { retryAfterMs: 1000 }),
			false,
		],
		["HTTP 400 (SQL refused)", new D1ApiError("x", { status: 400 }), false],
		["HTTP 401", new D1ApiError("x", { status: 401 }), false],
		["a TypeError in our own code", new TypeError("undefined is not a function"), false],
		["a plain Error", new Error("boom"), false],
		["a string", "boom", false],
	])("%s → %s", (_label, error, expected) => {
		expect(isAmbiguous(error)).toBe(expected);
	});
});

describe("parseRetryAfter()", () => {
	const now = Date.parse("2026-12-01T12:00:00Z");
	it.each([
		["120", 120_000],
		[" 5 ", 5_000],
		["Tue, 01 Dec 2026 12:01:00 GMT", 60_000],
		["Tue, 01 Dec 2026 11:00:00 GMT", 0],
		["soon", undefined],
		["", undefined],
		[undefined, undefined],
	])("%j → %j ms", (value, expected) => {
		expect(parseRetryAfter(value, now)).toBe(expected);
	});

	it("formats when to come back", () => {
		expect(formatRetryAfter(90_000, now)).toBe("in 90 s (at 12:01:30 UTC)");
		expect(formatRetryAfter(undefined, now)).toMatch(/no Retry-After/);
	});
});

describe("sleep()", () => {
	const settled = (p: Promise<void>) =>
		Promise.race([
			p.then(
				() => "slept",
				(e: Error) => `rejected: ${e.message}`,
			),
			new Promise<string>((r) => setImmediate(() => r("still waiting"))),
		]);

	it("rejects at once when the signal was aborted before the pause began", async () => {
		const controller = new AbortController();
		controller.abort(new Error("interrupted"));
		expect(await settled(sleep(60_000, controller.signal))).toBe("rejected: interrupted");
	});

	it("rejects when the signal aborts during the pause, and leaves no listener after one", async () => {
		const controller = new AbortController();
		await sleep(1, controller.signal);
		await sleep(1, controller.signal);
		expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
		const pause = sleep(60_000, controller.signal);
		controller.abort(new Error("stop"));
		expect(await settled(pause)).toBe("rejected: stop");
	});
});

describe("D1Client", () => {
	/** A server answering each request with the next of `answers` (status, body). */
	async function serve(answers: [number, unknown][], options: Partial<D1ClientOptions> = {}) {
		const seen: { method: string; url: string; auth: string; body: string }[] = [];
		const server = createHttpServer((req, res) => {
			let body = "";
			req.on("data", (c) => {
				body += c;
			});
			req.on("end", () => {
				seen.push({
					method: req.method ?? "",
					url: req.url ?? "",
					auth: String(req.headers.authorization),
					body,
				});
				const [status, payload] = answers[Math.min(seen.length - 1, answers.length - 1)] ?? [
					500,
					{},
				];
				res.writeHead(status, { "content-type": "application/json", "retry-after-ms": "1" });
				res.end(JSON.stringify(payload));
			});
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		const { port } = server.address() as { port: number };
		const client = new D1Client({
			apiToken: "tok",
			accountId: "acc",
			databaseId: "db",
			baseURL: `http://127.0.0.1:${port}/client/v4`,
			...options,
		});
		return { client, seen, close: () => new Promise((r) => server.close(r)) };
	}
	const ok = (result: unknown) =>
		[200, { success: true, errors: [], messages: [], result }] as [number, unknown];
	const failed = (status: number) => [status, envelope(7500, "busy")] as [number, unknown];

	it("sends the SQL as D1's /query body with the token, and maps the results", async () => {
		const s = await serve([ok([{ results: [{ n: 1 }], success: true, meta: { changes: 0 } }])]);
		try {
			const results = await s.client.query("SELECT 1 AS n;", { params: ["x"] });
			expect(results).toEqual([{ results: [{ n: 1 }], success: true, meta: { changes: 0 } }]);
			expect(s.seen).toEqual([
				{
					method: "POST",
					url: "/client/v4/accounts/acc/d1/database/db/query",
					auth: "Bearer tok",
					body: JSON.stringify({ sql: "SELECT 1 AS n;", params: ["x"] }),
				},
			]);
			expect(s.client.requestCount).toBe(1);
		} finally {
			await s.close();
		}
	});

	it("retries a read after a 503, and never a write", async () => {
		const read = await serve([failed(503), ok([{ results: [], success: true }])]);
		try {
			await expect(read.client.query("SELECT 1;")).resolves.toHaveLength(1);
			expect(read.seen).toHaveLength(2);
		} finally {
			await read.close();
		}
		const write = await serve([failed(503), ok([{ results: [], success: true }])]);
		try {
			const error = await write.client
				.query("INSERT INTO t VALUES (1);", { write: true })
				.catch((e) => e);
			expect(error).toBeInstanceOf(D1ApiError);
			expect(isAmbiguous(error)).toBe(true);
			expect(write.seen).toHaveLength(1);
		} finally {
			await write.close();
		}
	});

	it.each([
		["false", 503, 1],
		["true", 400, 2],
	])("follows x-should-retry: %s on an HTTP %i read", async (header, status, requests) => {
		const seen: string[] = [];
		const server = createHttpServer((req, res) => {
			seen.push(req.url ?? "");
			const first = seen.length === 1;
			res.writeHead(first ? status : 200, {
				"content-type": "application/json",
				"x-should-retry": header,
				"retry-after-ms": "1",
			});
			res.end(JSON.stringify(first ? envelope(7500, "x") : { success: true, result: [] }));
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		const { port } = server.address() as { port: number };
		try {
			const client = new D1Client({
				apiToken: "t",
				accountId: "a",
				databaseId: "d",
				baseURL: `http://127.0.0.1:${port}/client/v4`,
			});
			await client.query("SELECT 1;").catch(() => undefined);
			expect(seen).toHaveLength(requests);
		} finally {
			await new Promise((r) => server.close(r));
		}
	});

	it("without a databaseId, looks the UUID up by name once (a read, retried), then uses it", async () => {
		const missing = () => new Error("never provisioned");
		const s = await serve(
			[failed(503), ok({ uuid: "u-1", name: "app-db" }), ok([{ results: [], success: true }])],
			{ databaseId: undefined, lookup: { name: "app-db", missing } },
		);
		try {
			expect(s.client.databaseId).toBeUndefined();
			await Promise.all([s.client.query("SELECT 1;"), s.client.query("SELECT 2;")]);
			expect(s.seen.map((r) => `${r.method} ${r.url}`)).toEqual([
				"GET /client/v4/accounts/acc/d1/database/app-db?fields=uuid%2Cname",
				"GET /client/v4/accounts/acc/d1/database/app-db?fields=uuid%2Cname",
				"POST /client/v4/accounts/acc/d1/database/u-1/query",
				"POST /client/v4/accounts/acc/d1/database/u-1/query",
			]);
			expect(s.client.databaseId).toBe("u-1");
		} finally {
			await s.close();
		}
		const gone = await serve([[404, envelope(7404, "The database app-db could not be found")]], {
			databaseId: undefined,
			lookup: { name: "app-db", missing },
		});
		try {
			await expect(gone.client.query("SELECT 1;", { write: true })).rejects.toThrow(
				"never provisioned",
			);
			expect(gone.seen).toHaveLength(1);
		} finally {
			await gone.close();
		}
	});

	it("does not retry a definite refusal of a read", async () => {
		const s = await serve([failed(400), ok([])]);
		try {
			const error = await s.client.query("SELECT nope;").catch((e) => e);
			expect(error).toMatchObject({ status: 400, d1Code: 7500 });
			expect(s.seen).toHaveLength(1);
		} finally {
			await s.close();
		}
	});

	it("reads a bookmark at a timestamp and restores by bookmark through query parameters", async () => {
		const s = await serve([
			ok({ bookmark: "b1" }),
			ok({ bookmark: "b1", previous_bookmark: "b2", message: "done" }),
		]);
		try {
			expect(await s.client.getBookmark("2026-12-01T12:00:00.000Z")).toBe("b1");
			expect(await s.client.restore("b1")).toEqual({
				bookmark: "b1",
				previousBookmark: "b2",
				message: "done",
			});
			expect(s.seen.map((r) => [r.method, r.url])).toEqual([
				[
					"GET",
					"/client/v4/accounts/acc/d1/database/db/time_travel/bookmark?timestamp=2026-12-01T12%3A00%3A00.000Z",
				],
				["POST", "/client/v4/accounts/acc/d1/database/db/time_travel/restore?bookmark=b1"],
			]);
		} finally {
			await s.close();
		}
	});

	it("takes a 2xx answer that is not JSON as no clear answer", async () => {
		const server = createHttpServer((_req, res) => {
			res.writeHead(200, { "content-type": "text/html" });
			res.end("<html>gateway</html>");
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		const { port } = server.address() as { port: number };
		try {
			const client = new D1Client({
				apiToken: "t",
				accountId: "a",
				databaseId: "d",
				baseURL: `http://127.0.0.1:${port}/client/v4`,
			});
			const error = await client
				.query("INSERT INTO t VALUES (1);", { write: true })
				.catch((e) => e);
			expect(error).toBeInstanceOf(D1ApiError);
			expect(isAmbiguous(error)).toBe(true);
		} finally {
			await new Promise((r) => server.close(r));
		}
	});

	it("fails at once, as definite, when the API's host name does not resolve", async () => {
		// RFC 6761: .invalid never resolves, so getaddrinfo answers ENOTFOUND (no request leaves).
		const base = "http://workers-pipeline-test.invalid/client/v4";
		const client = new D1Client({ apiToken: "t", accountId: "a", databaseId: "d", baseURL: base });
		const error = await client.query("SELECT 1;").catch((e: unknown) => e);
		expect(error).toBeInstanceOf(D1ApiError);
		expect((error as Error).message).toContain(`at ${base}/accounts/a/d1/database/d/query`);
		expect((error as Error).message).toContain("ENOTFOUND");
		expect((error as Error).message).toContain("does not resolve");
		expect((error as Error).message).toContain("CLOUDFLARE_API_BASE_URL");
		// A read is otherwise tried readRetries (2) more times; a write's failure is not ambiguous.
		expect(client.requestCount).toBe(1);
		expect(isAmbiguous(error)).toBe(false);
	});

	it("still tries a read again when the resolver did not answer (EAI_AGAIN)", () => {
		const error = toD1ApiError(
			new NoAnswer("Connection error.", {
				cause: Object.assign(new TypeError("fetch failed"), {
					cause: Object.assign(new Error("getaddrinfo EAI_AGAIN"), { code: "EAI_AGAIN" }),
				}),
			}),
			"query",
			"https://api.cloudflare.com/client/v4/accounts/a/d1/database/d/query",
		);
		expect((error as D1ApiError).unsent).toBe(false);
		expect(isAmbiguous(error)).toBe(true);
		expect(error.message).not.toContain("CLOUDFLARE_API_BASE_URL");
	});

	it("names the URL it tried when nothing listens there", async () => {
		const server = createServer();
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		const { port } = server.address() as { port: number };
		await new Promise((resolve) => server.close(resolve));
		const base = `http://127.0.0.1:${port}/client/v4`;
		const client = new D1Client({
			apiToken: "t",
			accountId: "acc",
			databaseId: "db",
			baseURL: base,
			readRetries: 0,
		});
		const error = await client.query("SELECT 1;").catch((e: unknown) => e);
		expect(error).toBeInstanceOf(D1ApiError);
		expect((error as Error).message).toContain(`at ${base}/accounts/acc/d1/database/db/query`);
		expect((error as Error).message).toContain("ECONNREFUSED");
	});
});
