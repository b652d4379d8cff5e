// Fast: the pure parts of build and deploy (size verdicts, wrangler's output file, secrets files).
import { describe, expect, it } from "vitest";
import { FREE_PLAN_GZIP_KIB, judgeBundleSize, PAID_PLAN_GZIP_KIB } from "../../ci/steps/build.ts";
import { parseDeployOutput, parseSecretsFile } from "../../ci/steps/deploy.ts";

const KiB = 1024;

describe("judgeBundleSize", () => {
	it.each([
		{ case: "empty upload", gzipKiB: 0, budget: 3072, code: undefined },
		{ case: "well under budget", gzipKiB: 1000, budget: 3072, code: undefined },
		{ case: "exactly 80% of budget", gzipKiB: 800, budget: 1000, code: undefined },
		{ case: "just over 80% of budget", gzipKiB: 800.5, budget: 1000, code: "BUNDLE_NEAR_BUDGET" },
		{ case: "exactly at budget", gzipKiB: 1000, budget: 1000, code: "BUNDLE_NEAR_BUDGET" },
		{
			case: "over budget, within free plan",
			gzipKiB: 1001,
			budget: 1000,
			code: "BUNDLE_TOO_LARGE",
		},
		{
			case: "over budget, exactly at the free plan",
			gzipKiB: FREE_PLAN_GZIP_KIB,
			budget: 1000,
			code: "BUNDLE_TOO_LARGE",
		},
		{
			case: "over the free plan",
			gzipKiB: FREE_PLAN_GZIP_KIB + 1,
			budget: 1000,
			code: "BUNDLE_TOO_LARGE",
		},
		{
			case: "exactly at the paid plan",
			gzipKiB: PAID_PLAN_GZIP_KIB,
			budget: 3072,
			code: "BUNDLE_TOO_LARGE",
		},
		{
			case: "over the paid plan",
			gzipKiB: PAID_PLAN_GZIP_KIB + 1,
			budget: PAID_PLAN_GZIP_KIB,
			code: "BUNDLE_TOO_LARGE",
		},
	])("$case ($gzipKiB KiB gzip, budget $budget KiB) → $code", ({ gzipKiB, budget, code }) => {
		const findings = judgeBundleSize(Math.round(gzipKiB * KiB), budget);
		expect(findings.map((f) => f.code)).toEqual(code ? [code] : []);
		if (code === "BUNDLE_NEAR_BUDGET") {
			expect(findings[0]?.severity).toBe("warning");
			expect(findings[0]?.message).toContain(`over 80% of the ${budget} KiB budget`);
		}
		if (code === "BUNDLE_TOO_LARGE") {
			expect(findings[0]?.severity).toBe("error");
			expect(findings[0]?.message).toContain(`over the budget of ${budget} KiB`);
			expect(findings[0]?.message).toContain(`${Math.round(gzipKiB)} KiB gzip`);
		}
	});

	it("says where an over-budget upload stands against the plan limits", () => {
		const plan = (gzipKiB: number, budget = 1000) =>
			judgeBundleSize(gzipKiB * KiB, budget)[0]?.message ?? "";
		expect(plan(2000)).toContain("within the Workers limits");
		expect(plan(FREE_PLAN_GZIP_KIB)).toContain("within the Workers limits");
		expect(plan(FREE_PLAN_GZIP_KIB + 1)).toContain("over the 3 MiB free-plan limit");
		expect(plan(FREE_PLAN_GZIP_KIB + 1)).not.toContain("cannot be deployed");
		expect(plan(PAID_PLAN_GZIP_KIB)).toContain("over the 3 MiB free-plan limit");
		expect(plan(PAID_PLAN_GZIP_KIB + 1, PAID_PLAN_GZIP_KIB)).toContain(
			"over the 10 MiB limit of paid plans: it cannot be deployed",
		);
	});
});

// Written by wrangler 4.164 (`wrangler deploy --env staging --tag <sha>` with
// WRANGLER_OUTPUT_FILE_PATH) against the loopback API.
const WRANGLER_OUTPUT = `{"type":"wrangler-session","version":1,"wrangler_version":"4.164.0","command_line_args":["deploy","--config","wrangler.jsonc","--env","staging","--tag","342e17b7663473357617293d82cbf920cdf9167f","--message","workers-pipeline deploy 342e17b76634 by ci"],"log_file_path":"/tmp/wp-wrangler-home-H41kio/.config/.wrangler/logs/wrangler-2026-11-23_00-15-00_659.log","timestamp":"2026-11-23T00:15:00.987Z"}
{"type":"deploy","version":1,"worker_name":"workers-pipeline-example-staging","worker_tag":null,"version_id":"564a724e-2f29-4c93-96ca-0bce7c5f3fd1","targets":["https://workers-pipeline-example-staging.loopback.workers.dev"],"wrangler_environment":"staging","worker_name_overridden":false,"bundle_size":{"raw_bytes":165,"gzip_bytes":146},"timestamp":"2026-11-23T00:15:01.402Z"}
`;

describe("parseDeployOutput", () => {
	it("reads the version id and targets from wrangler's ND-JSON output file", () => {
		expect(parseDeployOutput(WRANGLER_OUTPUT)).toEqual({
			versionId: "564a724e-2f29-4c93-96ca-0bce7c5f3fd1",
			targets: ["https://workers-pipeline-example-staging.loopback.workers.dev"],
		});
	});

	it("finds nothing when wrangler stopped before deploying", () => {
		const sessionOnly = WRANGLER_OUTPUT.split("\n")[0] ?? "";
		expect(parseDeployOutput(sessionOnly)).toEqual({ versionId: undefined, targets: [] });
		expect(parseDeployOutput("")).toEqual({ versionId: undefined, targets: [] });
	});

	it("skips lines that are not JSON, and CRLF line ends", () => {
		const noisy = `not json\r\n${WRANGLER_OUTPUT.replaceAll("\n", "\r\n")}{"type":"deploy"`;
		expect(parseDeployOutput(noisy).versionId).toBe("564a724e-2f29-4c93-96ca-0bce7c5f3fd1");
	});

	it("has no targets for a Worker without a route or workers.dev", () => {
		const line = JSON.stringify({ type: "deploy", version_id: "v-1", targets: undefined });
		expect(parseDeployOutput(line)).toEqual({ versionId: "v-1", targets: [] });
	});
});

describe("parseSecretsFile", () => {
	it("reads a JSON object, stringifying non-string values", () => {
		expect(
			parseSecretsFile(' \n{ "API_KEY": "s3cr3t", "PORT": 8080, "FLAG": true, "EMPTY": "" }\n'),
		).toEqual({ API_KEY: "s3cr3t", PORT: "8080", FLAG: "true", EMPTY: "" });
	});

	it("rejects malformed JSON instead of guessing", () => {
		expect(() => parseSecretsFile('{ "API_KEY": ')).toThrow();
	});

	it("reads the .env form: export, quotes, comments, blank lines, CRLF", () => {
		const text = [
			"# secrets for staging",
			"API_KEY=plain-value",
			"export EXPORTED=exported-value",
			'DOUBLE="double quoted value"',
			"SINGLE='single quoted'",
			"  SPACED = around-equals  ",
			'QUOTED_TRAILING="kept inside"   ',
			"WITH_EQUALS=a=b=c",
			"EMPTY=",
			"",
			"not a line",
			"1BAD=starts with a digit",
		].join("\r\n");
		expect(parseSecretsFile(text)).toEqual({
			API_KEY: "plain-value",
			EXPORTED: "exported-value",
			DOUBLE: "double quoted value",
			SINGLE: "single quoted",
			SPACED: "around-equals",
			QUOTED_TRAILING: "kept inside",
			WITH_EQUALS: "a=b=c",
			EMPTY: "",
		});
	});

	it("ends an unquoted value at an inline ` #` comment and a quoted one at its quote, as dotenv does", () => {
		expect(
			parseSecretsFile(
				["PLAIN=value # rotated 2026-11", "HASH=abc#def", 'QUOTED="a # b" # note', "SQ='x#y'"].join(
					"\n",
				),
			),
		).toEqual({ PLAIN: "value", HASH: "abc#def", QUOTED: "a # b", SQ: "x#y" });
	});

	it("keeps mismatched quotes as part of the value", () => {
		expect(parseSecretsFile(`A="open\nB='mixed"`)).toEqual({ A: '"open', B: `'mixed"` });
	});
});
