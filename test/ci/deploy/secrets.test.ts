// Secret values never leave the tool: every form they take in text, and every string in a report.
import { describe, expect, it } from "vitest";
import {
	makeRedactor,
	planRedactedValues,
	REDACTED,
	redactDeep,
} from "../../../ci/deploy/secrets.ts";

describe("makeRedactor()", () => {
	it.each([
		{
			case: "as is",
			secret: "hunter2-secret",
			text: "token=hunter2-secret;",
			out: `token=${REDACTED};`,
		},
		{
			case: "JSON-escaped",
			secret: 'pa"ss\\word',
			text: '{"echo":"pa\\"ss\\\\word"}',
			out: `{"echo":"${REDACTED}"}`,
		},
		{ case: "URL-encoded", secret: "a b&c=d", text: "?q=a%20b%26c%3Dd", out: `?q=${REDACTED}` },
		{
			case: "every occurrence",
			secret: "xyzzy",
			text: "xyzzy and xyzzy",
			out: `${REDACTED} and ${REDACTED}`,
		},
		{ case: "too short to redact", secret: "abc", text: "abcabc", out: "abcabc" },
	])("$case", ({ secret, text, out }) => {
		expect(makeRedactor([secret])(text)).toBe(out);
	});

	it("hides a secret that contains another one whole", () => {
		const redact = makeRedactor(["abcd", "abcdefgh"]);
		expect(redact("abcdefgh")).toBe(REDACTED);
	});
});

describe("redactDeep()", () => {
	it("redacts strings at any depth and leaves other values alone", () => {
		const redact = makeRedactor(["s3cr3t-value"]);
		const data = {
			health: { lastBody: { reason: "echo s3cr3t-value", list: ["s3cr3t-value", 3, null, true] } },
			count: 2,
		};
		expect(redactDeep(data, redact)).toEqual({
			health: { lastBody: { reason: `echo ${REDACTED}`, list: [REDACTED, 3, null, true] } },
			count: 2,
		});
	});
});

describe("planRedactedValues()", () => {
	it("adds what wrangler may upload instead: the environment's value and $VAR expansions", () => {
		// A dotenv reference, not a JS template.
		const reference = ["tok-$", "{SUFFIX}-x"].join("");
		const values = planRedactedValues(
			{ API_KEY: "from-file-1", TOKEN: reference, PLAIN: "\\$NOT_EXPANDED" },
			{ API_KEY: "from-env-2", SUFFIX: "s3cr3t" },
		);
		expect(values).toEqual(
			expect.arrayContaining(["from-file-1", "from-env-2", reference, "tok-s3cr3t-x"]),
		);
		expect(values).toContain("$NOT_EXPANDED");
	});
});
