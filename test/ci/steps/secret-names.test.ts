import { describe, expect, it } from "vitest";
import { runCli } from "../../../ci/cli/main.ts";
import { assertSecretNames, lintSecretName } from "../../../ci/steps/_secret-names.ts";

describe("lintSecretName()", () => {
	it.each(["API_KEY", "SESSION_SECRET", "_x", "Stripe_Key2"])("accepts %s", (name) => {
		expect(lintSecretName(name)).toBeUndefined();
	});
	it.each([
		["CLOUDFLARE_API_TOKEN", /reserved/],
		["CLOUDFLARE_ACCOUNT_ID", /reserved/],
		["WP_CACHE_BUSTER", /reserved/],
		["GITHUB_SHA", /reserved/],
		["PATH", /reserved/],
		["A,B", /not a valid/],
		["1KEY", /not a valid/],
		["", /not a valid/],
	])("refuses %j", (name, why) => {
		expect(lintSecretName(name)).toMatch(why);
	});
});

describe("assertSecretNames()", () => {
	it("names every bad name in one usage error", () => {
		expect(() => assertSecretNames(["OK", "CLOUDFLARE_API_TOKEN", "A-B"])).toThrow(
			/CLOUDFLARE_API_TOKEN.*reserved.*"A-B" is not a valid/,
		);
	});
});

describe("deploy --secrets-from-env", () => {
	it("exits 2 on a reserved name before anything is sent", async () => {
		let stderr = "";
		const code = await runCli(
			["deploy", "--env", "staging", "--secrets-from-env", "API_KEY,CLOUDFLARE_API_TOKEN"],
			{
				stdout: () => {},
				stderr: (t) => {
					stderr += t;
				},
				env: {
					PATH: process.env.PATH,
					API_KEY: "x",
					CLOUDFLARE_API_TOKEN: "t",
					CLOUDFLARE_ACCOUNT_ID: "a",
				},
				cwd: process.cwd(),
				isTTY: false,
			},
		);
		expect(code).toBe(2);
		expect(stderr).toMatch(/CLOUDFLARE_API_TOKEN" is reserved/);
	});
});
