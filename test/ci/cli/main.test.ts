import { describe, expect, it } from "vitest";
import { describeFailure, makeRedactor } from "../../../ci/cli/main.ts";
import { CiError, D1ApiError, UserError } from "../../../ci/errors.ts";
import { exitCodeFor } from "../../../ci/report/codes.ts";

describe("describeFailure()", () => {
	it.each([
		["a UserError", new UserError("unknown flag --x"), "E_USAGE", 2, "unknown flag --x"],
		[
			"a wrangler failure thrown as a UserError",
			new UserError("cannot read the live version", "E_WRANGLER"),
			"E_WRANGLER",
			1,
			"cannot read the live version",
		],
		[
			"a refused token",
			new D1ApiError("D1 query failed (HTTP 401)", { status: 401 }),
			"E_D1_AUTH",
			2,
			"HTTP 401",
		],
		["a 5xx", new D1ApiError("D1 query failed (HTTP 503)", { status: 503 }), "E_D1_API", 1, "503"],
		[
			"no answer",
			new D1ApiError("no answer", { url: "http://127.0.0.1:9/q" }),
			"E_NETWORK",
			1,
			"(http://127.0.0.1:9/q)",
		],
		["a TypeError (a bug)", new TypeError("x is undefined"), "E_INTERNAL", 1, "This is a bug"],
		["a thrown string", "boom", "E_INTERNAL", 1, "internal error: boom"],
		[
			"an E_INTERNAL CiError",
			new CiError("oops", "E_INTERNAL"),
			"E_INTERNAL",
			1,
			"internal error: oops",
		],
	])("%s → %s, exit %d", (_, error, code, exit, text) => {
		const failure = describeFailure(error, { env: {} });
		expect(failure.code).toBe(code);
		expect(exitCodeFor(failure.code)).toBe(exit);
		expect(failure.message).toContain(text);
		expect(failure.message).not.toMatch(/^\s+at /m);
	});

	it("reports any error as an interruption once the run was aborted (exit 130)", () => {
		const failure = describeFailure(new UserError("wrangler was killed", "E_WRANGLER"), {
			aborted: true,
			env: {},
		});
		expect(failure).toEqual({ code: "E_INTERRUPTED", message: "interrupted: wrangler was killed" });
		expect(exitCodeFor(failure.code)).toBe(130);
	});

	it("adds the stack of a bug only with WORKERS_PIPELINE_DEBUG", () => {
		expect(
			describeFailure(new TypeError("t"), { env: { WORKERS_PIPELINE_DEBUG: "1" } }).message,
		).toMatch(/^\s+at /m);
	});
});

describe("makeRedactor()", () => {
	it.each([
		[
			{ CLOUDFLARE_API_TOKEN: "s3cr3t-token" },
			"token s3cr3t-token and s3cr3t-token",
			"token *** and ***",
		],
		// Too short to redact without mangling ordinary text.
		[{ CLOUDFLARE_API_TOKEN: "abc" }, "abc abc", "abc abc"],
		[{}, "nothing to hide", "nothing to hide"],
	])("%j: %s → %s", (env, text, redacted) => {
		expect(makeRedactor(env)(text)).toBe(redacted);
	});
});
