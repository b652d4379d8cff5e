// Every command shown in README.md and docs/*.md is real: `workers-pipeline` subcommands and
// flags against the CLI's own table and parser, `dagger call` lines against the introspected
// module, `wrangler` lines against wrangler's own --help. Every code in the registry
// (ci/report/codes.ts) is documented and every documented code is registered, and each command's
// --help lists all its flags.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { GLOBAL_FLAGS, parseFlags } from "../../ci/cli/args.ts";
import { COMMANDS, findCommand } from "../../ci/cli/commands.ts";
import { runCli } from "../../ci/cli/main.ts";
import { ERROR_CODES, FINDING_CODES } from "../../ci/report/codes.ts";
import {
	checkDaggerCall,
	type IntrospectedModule,
	introspectModule,
	ROOT,
	shellWords,
} from "../dagger/support.ts";

const DOCS = [
	join(ROOT, "README.md"),
	...readdirSync(join(ROOT, "docs"))
		.filter((f) => f.endsWith(".md"))
		.map((f) => join(ROOT, "docs", f)),
];
const text = (file: string) => readFileSync(file, "utf8");

interface Shown {
	file: string;
	line: number;
	tool: "workers-pipeline" | "dagger" | "wrangler";
	words: string[];
	source: string;
}

// Commands in fenced blocks: `\` continuations joined, `# comments` and `$ ` prompts dropped,
// `a && b`, `a; b` and `a | b` split, README-style `[--optional]` brackets unwrapped.
const commandsIn = (file: string, markdown: string): Shown[] => {
	const shown: Shown[] = [];
	const lines = markdown.split("\n");
	let fence: string | undefined;
	for (let i = 0; i < lines.length; i++) {
		const raw = lines[i] as string;
		const marker = raw.match(/^\s*(```+|~~~+)/)?.[1];
		if (marker) {
			if (!fence) fence = marker;
			else if (marker.startsWith(fence)) fence = undefined;
			continue;
		}
		if (!fence) continue;
		const start = i + 1;
		let line = raw;
		while (line.endsWith("\\") && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]}`;
		line = line.replace(/(^|\s)#.*$/, "");
		for (let part of line.split(/&&|;|\|(?![^[]*\])/)) {
			part = part.trim().replace(/^\$\s+/, "");
			const words = shellWords(part.replace(/[[\]]/g, " "));
			if (words[0] === "npx") words.shift();
			if (words[0] === "node" && words[1] === "bin/workers-pipeline.js")
				words.splice(0, 2, "workers-pipeline");
			const tool = words[0];
			if (tool !== "workers-pipeline" && tool !== "dagger" && tool !== "wrangler") continue;
			shown.push({
				file: relative(ROOT, file),
				line: start,
				tool,
				words: words.slice(1),
				source: part,
			});
		}
	}
	return shown;
};

const shown = DOCS.flatMap((f) => commandsIn(f, text(f)));
const where = (c: Shown) => `${c.file}:${c.line}: ${c.source}`;

describe("commands shown in the docs", () => {
	it("finds the commands (the extractor is live)", () => {
		for (const doc of ["runbook", "rollback", "troubleshooting", "secrets", "dagger"])
			expect(
				shown.some((c) => c.file === `docs/${doc}.md`),
				doc,
			).toBe(true);
		expect(shown.filter((c) => c.tool === "dagger").length).toBeGreaterThan(3);
		const fake = commandsIn(
			"x.md",
			"```sh\n$ workers-pipeline migrate \\\n  --env staging # go\n```\n",
		);
		expect(fake.map((c) => c.words)).toEqual([["migrate", "--env", "staging"]]);
	});

	const cli = shown.filter((c) => c.tool === "workers-pipeline");
	it.each(cli.map((c) => [where(c), c] as const))("%s", (_, c) => {
		const [name, ...argv] = c.words;
		if (name === "--help" || name === "--version") return;
		const command = findCommand(name ?? "");
		expect(command, `no command ${name}; known: ${COMMANDS.map((x) => x.name)}`).toBeDefined();
		// The CLI's own parser: unknown flags, values missing, switches given values all throw.
		expect(() =>
			parseFlags(argv, [...GLOBAL_FLAGS, ...(command?.flags ?? [])], name as string),
		).not.toThrow();
	});

	let mod: IntrospectedModule;
	beforeAll(async () => {
		mod = await introspectModule();
	});
	const dagger = shown.filter((c) => c.tool === "dagger");
	it.each(dagger.map((c) => [where(c), c] as const))("%s", (_, c) => {
		// `dagger [-m <module>] call …`; other dagger subcommands (install, develop, init) pass.
		let words = c.words;
		if (words[0] === "-m" || words[0] === "--mod") words = words.slice(2);
		if (words[0] !== "call") return;
		expect(checkDaggerCall(words.slice(1), mod)).toEqual([]);
	});

	// wrangler: the subcommand (leading lower-case words) exists and every flag is in its --help.
	const wrangler = shown.filter((c) => c.tool === "wrangler");
	const helps = new Map<string, Promise<string>>();
	const helpOf = (path: string[]) => {
		const key = path.join(" ");
		if (!helps.has(key)) {
			const bin = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
			const run = promisify(execFile)(process.execPath, [bin, ...path, "--help"], {
				cwd: ROOT,
				env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
			}).then((r) => r.stdout);
			helps.set(key, run);
		}
		return helps.get(key) as Promise<string>;
	};
	it.each(wrangler.map((c) => [where(c), c] as const))(
		"%s",
		async (_, c) => {
			const path = c.words.slice(0, c.words.findIndex((w) => !/^[a-z][a-z0-9-]*$/.test(w)) >>> 0);
			const help = await helpOf(path);
			// wrangler shows the deepest command it knows; the words after it are its positionals.
			const usage = (help.split("\n")[0] ?? "").split(" ").slice(1);
			const positionals = usage.findIndex((w) => /^[<[]/.test(w));
			const words = positionals < 0 ? usage : usage.slice(0, positionals);
			expect(path.slice(0, words.length)).toEqual(words);
			if (path.length > words.length) expect(positionals, "takes positionals").toBeGreaterThan(0);
			for (const w of c.words.filter((x) => x.startsWith("--"))) {
				const flag = w.split("=")[0] as string;
				expect(help, `${flag} in wrangler ${path.join(" ")} --help`).toMatch(
					new RegExp(`\\s${flag}(\\s|$)`),
				);
			}
		},
		30_000,
	);
});

describe("workers-pipeline <command> --help", () => {
	it.each(COMMANDS.map((c) => [c.name, c] as const))(
		"%s lists every flag",
		async (name, command) => {
			let out = "";
			const code = await runCli([name, "--help"], {
				stdout: (t) => {
					out += t;
				},
				stderr: () => {},
				env: {},
				cwd: ROOT,
				isTTY: false,
			});
			expect(code).toBe(0);
			for (const flag of [...command.flags, ...GLOBAL_FLAGS])
				expect(out).toMatch(new RegExp(`^ {2}--${flag.name}[ \\n]`, "m"));
			for (const example of command.examples) expect(out).toContain(example);
		},
	);
});

describe("docs/troubleshooting.md", () => {
	const doc = text(join(ROOT, "docs/troubleshooting.md"));
	const source = (function read(dir: string): string {
		return readdirSync(dir, { withFileTypes: true })
			.map((e) =>
				e.isDirectory()
					? read(join(dir, e.name))
					: e.name.endsWith(".ts")
						? readFileSync(join(dir, e.name), "utf8")
						: "",
			)
			.join("\n");
	})(join(ROOT, "ci"));

	// Finding codes: upper-case words with an underscore, in headings or backticks.
	const codes = [
		...new Set(
			[...doc.matchAll(/^#+ .*|`[^`\n]+`/gm)].flatMap((m) =>
				[...m[0].matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)].map((x) => x[0]),
			),
		),
	];
	const headings = [...doc.matchAll(/^## .*/gm)].map((m) => m[0]);

	it("covers at least 8 failures, each section naming its finding code or error", () => {
		expect(headings.length).toBeGreaterThanOrEqual(8);
		for (const code of ["LOCK_HELD", "LEDGER_CHECKSUM_MISMATCH", "PLAN_OUT_OF_ORDER"])
			expect(codes).toContain(code);
	});

	it.each(codes)("%s exists in ci/", (code) => {
		expect(source).toMatch(new RegExp(`\\b${code}\\b`));
	});

	// Quoted messages (```text blocks) come from the code: each line shares a run of at least 24
	// characters with ci/ (template literals escape their backticks; example values such as
	// file names and versions are filled in around those runs).
	const flat = source.replace(/\\`/g, "`");
	const messages = [...doc.matchAll(/```text\n([\s\S]*?)```/g)].flatMap((m) =>
		(m[1] as string).split("\n").filter(Boolean),
	);
	it("quotes at least 8 messages", () => expect(messages.length).toBeGreaterThanOrEqual(8));
	it.each(messages)("%s", (message) => {
		const runs = Array.from({ length: Math.max(1, message.length - 23) }, (_, i) =>
			message.slice(i, i + 24),
		);
		expect(runs.some((run) => flat.includes(run))).toBe(true);
	});
});

// A code is documented where a reader looks it up: a row of a table whose first cell is the
// code, or a troubleshooting heading naming it (`## LOCK_HELD: …`, `## … (HTTP 401, E_D1_AUTH)`).
const CODE = /\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;
const documentedCodes = (markdown: string): string[] => [
	...new Set([
		...[...markdown.matchAll(/^\| *`([A-Z][A-Z0-9_]+)` *\|/gm)].map((m) => m[1] as string),
		...[...markdown.matchAll(/^## .*/gm)].flatMap((m) => m[0].match(CODE) ?? []),
	]),
];

describe("the code registry (ci/report/codes.ts) and docs/", () => {
	const docs = ["docs/troubleshooting.md", "docs/migrations.md"];
	const documented = new Map(
		docs.flatMap((doc) => documentedCodes(text(join(ROOT, doc))).map((c) => [c, doc] as const)),
	);
	const registered = [...Object.keys(FINDING_CODES), ...Object.keys(ERROR_CODES)];

	it("reads table rows and headings (the extractor is live)", () => {
		const sample =
			"## LOCK_HELD: x\n## D1 error (HTTP 401, E_D1_AUTH)\n| `BIOME` | error |\nsee `NOT_A_ROW`\n";
		expect(documentedCodes(sample).sort()).toEqual(["BIOME", "E_D1_AUTH", "LOCK_HELD"]);
		expect(documented.size).toBeGreaterThan(60);
	});

	it.each(registered)(
		"%s is documented in docs/troubleshooting.md or docs/migrations.md",
		(code) => {
			expect(documented.has(code), `add a row for ${code} with what to do`).toBe(true);
		},
	);

	it.each([...documented])("%s (%s) is registered", (code) => {
		expect(registered, `register ${code} in ci/report/codes.ts or drop it from the docs`).toContain(
			code,
		);
	});
});
