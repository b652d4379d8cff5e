// Which version is live, from `wrangler deployments status --json`: only a definite "no
// deployments" is a first deploy.
import { describe, expect, it } from "vitest";
import type { ProjectConfig } from "../../../ci/config/schema.ts";
import {
	formatWranglerFailure,
	parseDeploymentsStatus,
	parseOutputEntries,
	uploadArgs,
	wranglerEnvArgs,
	wranglerTargetArgs,
} from "../../../ci/deploy/live.ts";

const result = (failed: boolean, stdout: string, stderr = "") => ({
	failed,
	stdout,
	stderr,
	exitCode: failed ? 1 : 0,
});
const A = "aaaaaaaa-0000-4000-8000-000000000001";
const B = "bbbbbbbb-0000-4000-8000-000000000002";

describe("parseDeploymentsStatus()", () => {
	it.each([
		{
			case: "a Worker the API does not know (10007)",
			input: result(
				true,
				"",
				"✘ [ERROR] A request to the Cloudflare API (/accounts/x/workers/scripts/app/deployments) failed.\n\n  workers.api.error.script_not_found: app [code: 10007]\n",
			),
			kind: "none",
		},
		{
			case: "a Worker with no deployments",
			input: result(true, "", "✘ [ERROR] The Worker app-staging has no deployments.\n"),
			kind: "none",
		},
		{
			case: "an unrelated error that says 'not found'",
			input: result(
				true,
				"",
				"✘ [ERROR] Could not route to /client/v4/accounts/x: account not found\n",
			),
			kind: "unknown",
		},
		{
			case: "a missing config file (does not exist)",
			input: result(true, "", "✘ [ERROR] The config file wrangler.toml does not exist\n"),
			kind: "unknown",
		},
		{
			case: "an authentication error",
			input: result(true, "", "Authentication error [code: 10000]"),
			kind: "unknown",
		},
		{ case: "no JSON", input: result(false, "hello"), kind: "unknown" },
		{ case: "no versions", input: result(false, '{"versions": []}'), kind: "unknown" },
	])("$case → $kind", ({ input, kind }) => {
		expect(parseDeploymentsStatus(input).kind).toBe(kind);
	});

	it("reads the version at 100 %", () => {
		const state = parseDeploymentsStatus(
			result(false, JSON.stringify({ id: "d", versions: [{ version_id: A, percentage: 100 }] })),
		);
		expect(state).toEqual({
			kind: "live",
			versionId: A,
			versions: [{ version_id: A, percentage: 100 }],
		});
	});

	it("reads a split deployment: the larger share is the live one, both are kept", () => {
		const versions = [
			{ version_id: B, percentage: 10 },
			{ version_id: A, percentage: 90 },
		];
		const state = parseDeploymentsStatus(result(false, `banner\n${JSON.stringify({ versions })}`));
		expect(state).toEqual({ kind: "live", versionId: A, versions });
	});

	it("keeps the wrangler output in the message of an unknown state", () => {
		const state = parseDeploymentsStatus(
			result(true, "", "✘ [ERROR] fetch failed: ECONNREFUSED 127.0.0.1:9\n"),
		);
		expect(state).toMatchObject({
			kind: "unknown",
			message: expect.stringContaining("ECONNREFUSED"),
		});
	});
});

// wrangler without --env addresses the top-level Worker (issue 9, item 4): no "--env undefined".
describe("wranglerTargetArgs()", () => {
	const project = { wranglerPath: "/app/wrangler.jsonc" } as ProjectConfig;
	it.each([
		{ env: undefined, argv: ["--config", "/app/wrangler.jsonc"] },
		{ env: "", argv: ["--config", "/app/wrangler.jsonc"] },
		{ env: "staging", argv: ["--config", "/app/wrangler.jsonc", "--env", "staging"] },
	])("env $env → $argv", ({ env, argv }) => {
		expect(wranglerTargetArgs({ project, env })).toEqual(argv);
		expect(wranglerEnvArgs(env)).toEqual(argv.slice(2));
	});
});

describe("parseOutputEntries()", () => {
	it.each([
		["", []],
		["\n\n", []],
		['{"type":"wrangler-session"}\n', [{ type: "wrangler-session" }]],
		['not json\n{"type":"deploy"}\n{"type":"deploy",\n', [{ type: "deploy" }]],
		['null\n"text"\n42\n{"a":1}\n{"b":2}', [{ a: 1 }, { b: 2 }]],
	])("%j → %j", (ndjson, entries) => {
		expect(parseOutputEntries(ndjson)).toEqual(entries);
	});
});

describe("uploadArgs()", () => {
	it("puts the tag, message, each var and the secrets file in wrangler's flags", () => {
		expect(
			uploadArgs({ tag: "abc", message: "m", vars: { A: "1", B: "x:y" }, secretsFile: "/s" }),
		).toEqual([
			...["--tag", "abc", "--message", "m"],
			...["--var", "A:1", "--var", "B:x:y", "--secrets-file", "/s"],
		]);
	});

	it("leaves out --var and --secrets-file when there are none", () => {
		expect(uploadArgs({ tag: "abc", message: "m", vars: {} })).toEqual([
			...["--tag", "abc", "--message", "m"],
		]);
	});
});

describe("formatWranglerFailure()", () => {
	it.each([
		[{ exitCode: 1, signal: null }, "wrangler deploy failed (exit 1):\nout\nerr"],
		[{ exitCode: null, signal: "SIGTERM" }, "wrangler deploy failed (exit SIGTERM):\nout\nerr"],
	])("%j", (exit, message) => {
		expect(formatWranglerFailure("deploy", { ...exit, stdout: "out\n", stderr: "err\n" })).toBe(
			message,
		);
	});
});
