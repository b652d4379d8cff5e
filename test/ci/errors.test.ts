import { describe, expect, it } from "vitest";
import { CiError, D1ApiError, NetworkError, UserError } from "../../ci/errors.ts";
import { exitCodeFor } from "../../ci/report/codes.ts";

describe("D1ApiError", () => {
	it.each([
		[{ status: 401, d1Code: 10000 }, "E_D1_AUTH", 2],
		[{ status: 403, d1Code: 7403 }, "E_D1_AUTH", 2],
		[{ status: 404, d1Code: 7404 }, "E_D1_NOT_FOUND", 2],
		[{ status: 400, d1Code: 7500 }, "E_D1_API", 1],
		[{ status: 429 }, "E_D1_API", 1],
		[{ status: 503 }, "E_D1_API", 1],
		[{}, "E_D1_API", 1],
		[
			{ url: "https://api.cloudflare.com/client/v4/accounts/a/d1/database/b/query" },
			"E_NETWORK",
			1,
		],
		[{ status: 500, url: "https://api.example/x" }, "E_D1_API", 1],
	])("%j → %s, exit %d", (details, code, exit) => {
		const error = new D1ApiError("D1 query failed", details);
		expect(error.code).toBe(code);
		expect(exitCodeFor(error.code)).toBe(exit);
		expect(error.status).toBe((details as { status?: number }).status);
	});

	it("names the URL of a request that got no answer, once", () => {
		const url = "http://127.0.0.1:9/client/v4/accounts/a/d1/database/b/query";
		expect(new D1ApiError("D1 query: no answer from the API", { url }).message).toBe(
			`D1 query: no answer from the API (${url})`,
		);
		expect(new D1ApiError(`no answer from ${url}`, { url }).message).toBe(`no answer from ${url}`);
	});

	it("keeps its cause", () => {
		const cause = new TypeError("fetch failed");
		expect(new D1ApiError("x", { cause }).cause).toBe(cause);
	});
});

describe("NetworkError", () => {
	it("names the URL and keeps the cause; a network failure exits 1", () => {
		const cause = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
		const error = new NetworkError("no answer from the health endpoint", {
			url: "https://app.example/api/health",
			cause,
		});
		expect(error.message).toBe(
			"no answer from the health endpoint (https://app.example/api/health)",
		);
		expect(error.cause).toBe(cause);
		expect(error).toBeInstanceOf(CiError);
		expect(exitCodeFor(error.code)).toBe(1);
	});
});

describe("UserError", () => {
	it("defaults to E_USAGE (exit 2); the code, not the class, decides the exit code", () => {
		expect(exitCodeFor(new UserError("bad flag").code)).toBe(2);
		expect(exitCodeFor(new UserError("wrangler failed", "E_WRANGLER").code)).toBe(1);
	});
});
