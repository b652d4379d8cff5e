// Shared by the Dagger module tests: the SDK instance the module itself loads, its introspector,
// and a loopback GraphQL endpoint standing in for the engine.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
	type FieldNode,
	type OperationDefinitionNode,
	parse,
	print,
	type SelectionSetNode,
	valueFromASTUntyped,
} from "graphql";

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
export const introspectModule = async (): Promise<IntrospectedModule> => {
	const entry = sdkEntry();
	const clientGen = join(mkdtempSync(join(tmpdir(), "wp-dagger-")), "client.gen.ts");
	copyFileSync(new URL("./api/client.gen.d.ts", pathToFileURL(entry)), clientGen);
	const introspector = new URL("./module/introspector/index.js", pathToFileURL(entry));
	const { scan } = (await import(introspector.href)) as {
		scan: (files: string[], name: string, load: boolean) => Promise<IntrospectedModule>;
	};
	const files = readdirSync(MODULE_SRC)
		.filter((f) => f.endsWith(".ts"))
		.map((f) => join(MODULE_SRC, f));
	return scan([...files, clientGen], "workers-pipeline", false);
};

export interface Call {
	field: string;
	args: Record<string, unknown>;
}

// Flattens one query into the chain of calls it selects, outermost first.
export const chainOf = (query: string): Call[] => {
	const op = parse(query).definitions[0] as OperationDefinitionNode;
	const calls: Call[] = [];
	let set: SelectionSetNode | undefined = op.selectionSet;
	while (set) {
		const field = set.selections[0] as FieldNode;
		const args = Object.fromEntries(
			(field.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]),
		);
		calls.push({ field: field.name.value, args });
		set = field.selectionSet;
	}
	return calls;
};

// Objects loaded by ID answer with that same ID, so the caller's IDs stay traceable in the chain.
const answer = (
	set: SelectionSetNode,
	ids: () => string,
	loadedId?: string,
): Record<string, unknown> => {
	const out: Record<string, unknown> = {};
	for (const sel of set.selections) {
		if (sel.kind !== "Field") continue;
		const key = sel.alias?.value ?? sel.name.value;
		const idArg = sel.arguments?.find((a) => a.name.value === "id");
		const loads = sel.name.value.startsWith("load") && idArg?.value.kind === "StringValue";
		if (sel.selectionSet) {
			const next = loads && idArg?.value.kind === "StringValue" ? idArg.value.value : undefined;
			out[key] = answer(sel.selectionSet, ids, next);
		} else if (sel.name.value === "id" || sel.name.value === "sync") out[key] = loadedId ?? ids();
		else if (sel.name.value === "exitCode") out[key] = 0;
		else if (sel.name.value === "plaintext") out[key] = PLAINTEXT_SENTINEL;
		else out[key] = `${sel.name.value}-output`;
	}
	return out;
};

// Returned if anything ever asks for a secret's plaintext; it must never show up in a query.
export const PLAINTEXT_SENTINEL = "PLAINTEXT-SENTINEL-d41d8cd9";

export interface FakeEngine {
	port: number;
	token: string;
	queries: string[];
	close: () => Promise<void>;
}

// A loopback GraphQL endpoint that records every query and answers each selection plausibly.
export const startFakeEngine = async (): Promise<FakeEngine> => {
	const queries: string[] = [];
	let n = 0;
	const server: Server = createServer((req, res) => {
		let body = "";
		req.on("data", (chunk) => {
			body += chunk;
		});
		req.on("end", () => {
			const { query } = JSON.parse(body) as { query: string };
			queries.push(query);
			const op = parse(query).definitions[0] as OperationDefinitionNode;
			const data = answer(op.selectionSet, () => `id-${++n}`);
			res.setHeader("content-type", "application/json");
			res.end(JSON.stringify({ data }));
		});
	});
	await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
	const { port } = server.address() as AddressInfo;
	return {
		port,
		token: "loopback-session-token",
		queries,
		close: () => new Promise((ok) => server.close(() => ok())),
	};
};

// Stable, readable form of a query for file snapshots.
export const normalizeQuery = (query: string): string =>
	print(parse(query))
		.replace(/"\d{13}-[0-9a-f-]{36}"/g, '"<cache-buster>"')
		.replace(/"id-\d+"/g, '"<id>"');
