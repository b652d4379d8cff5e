// Cloudflare API envelopes → D1ApiError, and which failures are "no clear answer".
import { createServer } from "node:net";
import { APIConnectionError, APIError } from "cloudflare";
import { describe, expect, it } from "vitest";
import {
	D1Client,
	D1RateLimitError,
	formatRetryAfter,
	isAmbiguous,
	parseRetryAfter,
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
) => APIError.generate(status, envelope(code, message), undefined, new Headers(headers));

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
			new APIConnectionError({
				message: "Connection error.",
				cause: Object.assign(new Error("x"), { code: "ECONNREFUSED" }),
			}),
			"query",
			"http://127.0.0.1:9/client/v4/accounts/a/d1/database/d/query",
		);
		expect(error.status).toBeUndefined();
		expect(error.message).toContain(
			"at http://127.0.0.1:9/client/v4/accounts/a/d1/database/d/query",
		);
		expect(error.message).toContain("ECONNREFUSED");
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

describe("D1Client", () => {
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
