// The shape issue 8 asks of ci/: no function over 120 lines. A TypeScript-AST scan (not a line
// count of the file), so an arrow function inside an object literal counts as much as a declaration.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const MAX_LINES = 120;
const CI = path.resolve(import.meta.dirname, "../../ci");

/** Pure: every function-like node of one source text with more than `max` lines. */
function findLongFunctions(file: string, text: string, max = MAX_LINES): string[] {
	const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
	const long: string[] = [];
	const visit = (node: ts.Node) => {
		if (ts.isFunctionLike(node) && "body" in node && node.body) {
			const first = source.getLineAndCharacterOfPosition(node.getStart()).line;
			const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
			const name = node.name?.getText(source) ?? "(anonymous)";
			if (last - first + 1 > max)
				long.push(`${file}:${first + 1} ${name} (${last - first + 1} lines)`);
		}
		ts.forEachChild(node, visit);
	};
	visit(source);
	return long;
}

const sources = (dir: string): string[] =>
	readdirSync(dir, { withFileTypes: true, recursive: true })
		.filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
		.map((entry) => path.join(entry.parentPath, entry.name));

describe("findLongFunctions()", () => {
	const body = (lines: number) =>
		Array.from({ length: lines }, (_, i) => `\tconst v${i} = ${i};`).join("\n");
	it.each([
		{ case: "a declaration of 120 lines", text: `function f() {\n${body(118)}\n}`, long: 0 },
		{ case: "a declaration of 121 lines", text: `function f() {\n${body(119)}\n}`, long: 1 },
		{
			case: "an arrow inside an object",
			text: `const o = { run: () => {\n${body(130)}\n} };`,
			long: 1,
		},
		{ case: "a method", text: `class C { m() {\n${body(130)}\n} }`, long: 1 },
		{ case: "a signature without a body", text: `declare function f(): void;`, long: 0 },
	])("$case → $long", ({ text, long }) => {
		expect(findLongFunctions("x.ts", text)).toHaveLength(long);
	});
});

describe("ci/", () => {
	it(`has no function over ${MAX_LINES} lines`, () => {
		const long = sources(CI).flatMap((file) =>
			findLongFunctions(path.relative(CI, file), readFileSync(file, "utf8")),
		);
		expect(long).toEqual([]);
	});
});
