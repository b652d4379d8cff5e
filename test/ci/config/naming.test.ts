import { describe, expect, it } from "vitest";
import { NAMING_PRESETS, resolveNamingRule } from "../../../ci/config/naming.ts";

describe("resolveNamingRule()", () => {
	const own = { pattern: "^x$", description: "x" };
	const perDir = { "db/migrations": "prisma", events: own } as const;
	it.each([
		[undefined, undefined, NAMING_PRESETS.strict],
		["drizzle-kit", "anything", NAMING_PRESETS["drizzle-kit"]],
		[own, "events", own],
		// One rule per migrations dir, however the dir is spelled; a dir left out is strict.
		[perDir, "db/migrations", NAMING_PRESETS.prisma],
		[perDir, "./db/migrations/", NAMING_PRESETS.prisma],
		[perDir, "events", own],
		[perDir, "other", NAMING_PRESETS.strict],
		[perDir, undefined, NAMING_PRESETS.strict],
	] as const)("should resolve %j for %j", (naming, dir, expected) => {
		expect(resolveNamingRule(naming, dir)).toEqual(expected);
	});
});
