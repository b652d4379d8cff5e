import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LINT_RULES } from "../../../ci/migrations/lint.ts";
import {
	ERROR_CODES,
	type ErrorCode,
	EXIT_FAILED,
	EXIT_INTERRUPTED,
	EXIT_USAGE,
	exitCodeFor,
	FINDING_CODES,
	isErrorCode,
	isFindingCode,
} from "../../../ci/report/codes.ts";

const CI = path.resolve(import.meta.dirname, "../../../ci");
const sources = readdirSync(CI, { recursive: true, encoding: "utf8" })
	.filter((f) => f.endsWith(".ts") && f !== path.join("report", "codes.ts"))
	.map((f) => readFileSync(path.join(CI, f), "utf8"))
	.join("\n");

describe("exitCodeFor()", () => {
	it.each<[ErrorCode, number]>([
		["E_USAGE", EXIT_USAGE],
		["E_CONFIG_INVALID", EXIT_USAGE],
		["E_CONFIG_MISSING", EXIT_USAGE],
		["E_MIGRATIONS_DIR", EXIT_USAGE],
		["E_D1_AUTH", EXIT_USAGE],
		["E_D1_NOT_FOUND", EXIT_USAGE],
		// A remote or tool failure is a failed run, never "bad configuration".
		["E_D1_API", EXIT_FAILED],
		["E_NETWORK", EXIT_FAILED],
		["E_WRANGLER", EXIT_FAILED],
		// Another run holds the lock: this run failed, the configuration is fine.
		["E_LOCK_HELD", EXIT_FAILED],
		["E_INTERNAL", EXIT_FAILED],
		["E_INTERRUPTED", EXIT_INTERRUPTED],
	])("%s → %d", (code, exit) => {
		expect(exitCodeFor(code)).toBe(exit);
	});

	it("covers every registered error code in the table above", () => {
		expect(Object.keys(ERROR_CODES)).toHaveLength(12);
	});
});

describe("the registry", () => {
	it.each(Object.keys({ ...FINDING_CODES, ...ERROR_CODES }))(
		"%s is emitted somewhere in ci/",
		(code) => {
			expect(sources).toContain(`"${code}"`);
		},
	);

	it.each(LINT_RULES.map((r) => [r.code, r.severity] as const))(
		"lint rule %s is registered with severity %s",
		(code, severity) => {
			expect(FINDING_CODES[code as keyof typeof FINDING_CODES]?.severity).toBe(severity);
		},
	);

	it.each([
		["LOCK_HELD", true, false],
		["TS2322", true, false],
		["TS", false, false],
		["TSX1", false, false],
		["E_WRANGLER", false, true],
		["NOT_A_CODE", false, false],
		["toString", false, false],
	])("%s: finding code %s, error code %s", (code, finding, error) => {
		expect(isFindingCode(code)).toBe(finding);
		expect(isErrorCode(code)).toBe(error);
	});

	it("gives every code a one-line meaning", () => {
		for (const info of [...Object.values(FINDING_CODES), ...Object.values(ERROR_CODES)]) {
			expect(info.meaning).toMatch(/^\S[^\n]{5,100}$/);
		}
	});
});
