import { describe, expect, it } from "vitest";
import {
	type FlagDef,
	formatFlagRows,
	formatRows,
	GLOBAL_FLAGS,
	requiredUsage,
	wrapText,
} from "../../../ci/cli/args.ts";
import { COMMANDS } from "../../../ci/cli/commands.ts";
import { helpWidth, renderHelp } from "../../../ci/cli/main.ts";
import { captureCli } from "../../support/cli.ts";

describe("wrapText()", () => {
	it.each([
		["one two three", 7, 0, ["one two", "three"]],
		["one two three", 80, 0, ["one two three"]],
		["one  two\nthree", 80, 0, ["one two three"]],
		["a-very-long-word b", 5, 0, ["a-very-long-word", "b"]],
		["aa bb cc dd", 5, 2, ["aa bb", "  cc", "  dd"]],
		["", 10, 0, [""]],
	])("%j at width %i, indent %i", (text, width, indent, expected) => {
		expect(wrapText(text, width, indent)).toEqual(expected);
	});
});

describe("formatRows()", () => {
	it("aligns the second column and wraps it under itself", () => {
		expect(
			formatRows(
				[
					["--a", "short"],
					["--bbbb <x>", "one two three four five six"],
				],
				30,
			),
		).toEqual([
			"  --a         short",
			"  --bbbb <x>  one two three",
			"              four five six",
		]);
	});

	it("puts a label wider than half the width on its own line", () => {
		expect(formatRows([["--an-extremely-long-flag <value>", "text"]], 30)).toEqual([
			"  --an-extremely-long-flag <value>",
			"               text",
		]);
	});
});

describe("formatFlagRows() and requiredUsage()", () => {
	const flags: FlagDef[] = [
		{ name: "through", type: "string", value: "<NNNN>", description: "newest", required: true },
		{ name: "dry-run", type: "boolean", description: "write nothing" },
	];

	it("marks required flags and shows values only for string flags", () => {
		expect(formatFlagRows(flags, 80)).toEqual([
			"  --through <NNNN>  newest (required)",
			"  --dry-run         write nothing",
		]);
	});

	it("lists required flags for the usage line", () => {
		expect(requiredUsage(flags)).toBe(" --through <NNNN>");
		expect(requiredUsage([])).toBe("");
	});
});

describe("renderHelp()", () => {
	const pages = [undefined, ...COMMANDS].map((c) => [c?.name ?? "(overview)", c] as const);

	it.each(pages.flatMap(([name, c]) => [60, 80, 120].map((w) => [name, w, c] as const)))(
		"%s at width %i: no line wider than the width",
		(_, width, command) => {
			const wide = renderHelp(command, width)
				.split("\n")
				// Command lines (usage, examples) are never broken: they are copied as they are.
				.filter((l) => l.length > width && !/^(Usage: | {2})workers-pipeline /.test(l));
			expect(wide).toEqual([]);
		},
	);

	it.each(COMMANDS.map((c) => [c.name, c] as const))(
		"%s: usage names its required flags; every flag is listed once",
		(_, command) => {
			const text = renderHelp(command, 80);
			const required = command.flags.filter((f) => f.required);
			expect(text.split("\n")[0]).toBe(
				`Usage: workers-pipeline ${command.name}${required.map((f) => ` --${f.name} ${f.value}`).join("")} [options]`,
			);
			for (const flag of [...command.flags, ...GLOBAL_FLAGS]) {
				expect(text.match(new RegExp(`^  --${flag.name}\\b`, "gm"))).toHaveLength(1);
			}
		},
	);
});

describe("helpWidth()", () => {
	it.each([
		[undefined, 80],
		["100", 100],
		["20", 60],
		["500", 120],
		["wide", 80],
	])("COLUMNS=%s → %i", (columns, expected) => {
		expect(helpWidth({ COLUMNS: columns })).toBe(expected);
	});
});

describe("help <command>", () => {
	it("prints that command's help, as --help after it does", async () => {
		const help = await captureCli(["help", "migrate"]);
		expect(help.code).toBe(0);
		expect(help.stdout).toBe((await captureCli(["migrate", "--help"])).stdout);
		expect(help.stdout).toContain("--env");
	});
	it("names an unknown command as a usage error", async () => {
		const help = await captureCli(["help", "migrat"]);
		expect(help.code).toBe(2);
		expect(help.stderr).toContain("Did you mean `migrate`?");
	});
});
