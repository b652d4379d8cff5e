// Shared by the Dagger module tests: the SDK instance the module itself loads, its introspector,
// and the `dagger call` checker for docs and workflows. The engine stand-in that executes the
// module lives in test/support/dagger-engine/.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

export const ROOT = resolve(import.meta.dirname, "../..");
export const MODULE_SRC = join(ROOT, ".dagger/src");
export const MODULE_ENTRY = join(MODULE_SRC, "index.ts");

// Resolve @dagger.io/dagger exactly as .dagger/src/index.ts does, so `connection()` and the
// module share one global client.
export const sdkEntry = (): string => createRequire(MODULE_ENTRY).resolve("@dagger.io/dagger");

export const runTsc = (tsconfig: string) => {
	const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
	const result = spawnSync(process.execPath, [tsc, "--noEmit", "-p", tsconfig], {
		cwd: ROOT,
		encoding: "utf8",
	});
	return { status: result.status, output: `${result.stdout}${result.stderr}` };
};

export interface IntrospectedArg {
	name: string;
	type?: { kind: string; name?: string };
	isOptional: boolean;
	defaultValue?: unknown;
	defaultPath?: string;
	ignore?: string[];
}
export interface IntrospectedFn {
	name: string;
	cache?: string;
	returnType?: { kind: string; name?: string };
	arguments: Record<string, IntrospectedArg>;
}
export interface IntrospectedModule {
	name: string;
	objects: Record<
		string,
		{
			_constructor?: { arguments: Record<string, IntrospectedArg> };
			methods: Record<string, IntrospectedFn>;
		}
	>;
	enums: Record<string, { values: Record<string, { name: string; value: string }> }>;
}

// Runs the SDK's own introspector. It only trusts core types declared in a file named
// client.gen.ts (what `dagger develop` generates), so the package's declarations stand in for it.
export const introspectModule = async (
	srcDir = MODULE_SRC,
	name = "workers-pipeline",
): Promise<IntrospectedModule> => {
	const entry = sdkEntry();
	const dir = mkdtempSync(join(tmpdir(), "wp-dagger-"));
	const clientGen = join(dir, "client.gen.ts");
	copyFileSync(new URL("./api/client.gen.d.ts", pathToFileURL(entry)), clientGen);
	const introspector = new URL("./module/introspector/index.js", pathToFileURL(entry));
	const { scan } = (await import(introspector.href)) as {
		scan: (files: string[], name: string, load: boolean) => Promise<IntrospectedModule>;
	};
	const files = readdirSync(srcDir)
		.filter((f) => f.endsWith(".ts"))
		.map((f) => join(srcDir, f));
	try {
		return await scan([...files, clientGen], name, false);
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
};

// ---- `dagger call` command lines (docs, workflows) checked against the introspected module ----

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const isPlaceholder = (v: string) => /^<.*>$/.test(v) || /^"?\$\{?[A-Z_]+\}?"?$/.test(v);
// Where a Secret may come from on the command line: a provider reference, never a value.
const SECRET_REF = /^(env|file|cmd|op|vault):(\/\/)?\S+$/;
// Core functions a Directory/File result may be chained into.
const CHAINABLE: Record<string, string[]> = {
	Directory: ["export", "entries", "file", "directory", "sync"],
	File: ["export", "contents", "sync"],
};

type ArgType = IntrospectedArg["type"] & { typeDef?: ArgType };

// Reads `--flag value` / `--flag=value` / bare boolean switches against one argument table.
const readFlags = (
	tokens: string[],
	args: Record<string, IntrospectedArg>,
	where: string,
	enums: IntrospectedModule["enums"],
	problems: string[],
): { rest: string[]; given: Set<string> } => {
	const byFlag = new Map(Object.values(args).map((a) => [kebab(a.name), a]));
	const given = new Set<string>();
	let i = 0;
	while (i < tokens.length && (tokens[i] as string).startsWith("--")) {
		const [flag, inline] = (tokens[i] as string).slice(2).split(/=(.*)/s) as [string, string?];
		const arg = byFlag.get(flag);
		i++;
		if (!arg) {
			problems.push(`${where}: unknown flag --${flag} (known: ${[...byFlag.keys()].join(", ")})`);
			continue;
		}
		given.add(arg.name);
		const type = arg.type as ArgType;
		if (type?.kind === "BOOLEAN_KIND") {
			if (inline !== undefined && !["true", "false"].includes(inline))
				problems.push(`${where}: --${flag} is a switch, not --${flag}=${inline}`);
			continue;
		}
		const value = inline ?? tokens[i++];
		if (value === undefined || value.startsWith("--")) {
			problems.push(`${where}: --${flag} needs a value`);
			continue;
		}
		if (isPlaceholder(value)) continue;
		const item = type?.kind === "LIST_KIND" ? type.typeDef : type;
		for (const v of type?.kind === "LIST_KIND" ? value.split(",") : [value]) {
			if (item?.name === "Secret" && !SECRET_REF.test(v))
				problems.push(`${where}: --${flag} must be a secret reference (env://NAME), not ${v}`);
			if (item?.kind === "INTEGER_KIND" && !/^\d+$/.test(v))
				problems.push(`${where}: --${flag} expects an integer, not ${v}`);
			const values = item?.kind === "ENUM_KIND" && item.name ? enums[item.name]?.values : undefined;
			if (values && !Object.values(values).some((e) => e.name === v))
				problems.push(`${where}: --${flag} ${v} is not one of the ${item?.name} values`);
		}
	}
	return { rest: tokens.slice(i), given };
};

/** Problems with one `dagger call …` argv (the words after `call`); empty when it is valid. */
export const checkDaggerCall = (tokens: string[], mod: IntrospectedModule): string[] => {
	const problems: string[] = [];
	const obj = mod.objects.WorkersPipeline;
	if (!obj) return ["no WorkersPipeline object"];
	const ctor = readFlags(
		tokens,
		obj._constructor?.arguments ?? {},
		"constructor",
		mod.enums,
		problems,
	);
	const [name, ...after] = ctor.rest;
	const fn = Object.values(obj.methods).find((m) => kebab(m.name) === name);
	if (!fn) return [...problems, `no function ${name ?? "(none)"} in the module`];
	const call = readFlags(after, fn.arguments, name as string, mod.enums, problems);
	for (const arg of Object.values(fn.arguments)) {
		const optional = arg.isOptional || arg.defaultValue !== undefined || arg.defaultPath;
		if (!optional && !call.given.has(arg.name))
			problems.push(`${name}: missing required --${kebab(arg.name)}`);
	}
	const [chained] = call.rest;
	if (chained !== undefined) {
		const allowed = CHAINABLE[fn.returnType?.name ?? ""] ?? [];
		if (!allowed.includes(chained))
			problems.push(
				`${name} returns ${fn.returnType?.name ?? fn.returnType?.kind}: cannot chain ${chained}`,
			);
	}
	return problems;
};

/** Shell-ish words: quotes removed, `<placeholders with spaces>` kept as one word. */
export const shellWords = (line: string): string[] => {
	const words: string[] = [];
	const re = /<[^>]*>|"[^"]*"|'[^']*'|\S+/g;
	for (const m of line.matchAll(re)) {
		let w = m[0];
		if (/^".*"$|^'.*'$/s.test(w)) w = w.slice(1, -1);
		words.push(w);
	}
	return words;
};
