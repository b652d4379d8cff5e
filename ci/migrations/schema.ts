import {
	compareAsLocale,
	isCommentToken,
	type SqlToken,
	splitStatements,
	tokenizeSql,
} from "./sql.ts";

export type SchemaObjectType = "table" | "index" | "view" | "trigger";

export interface SchemaObject {
	type: SchemaObjectType;
	name: string;
	table: string;
	/** Canonical, pretty-printed CREATE statement (no trailing `;`). */
	sql: string;
}

/** A database schema, order-independent: objects sorted by type then name. */
export interface Schema {
	objects: SchemaObject[];
}

export interface SchemaRow {
	type: string;
	name: string;
	tbl_name: string;
	sql: string | null;
}

/** Reads sqlite_master the same way from better-sqlite3, local D1 or remote D1. */
export const SCHEMA_QUERY =
	"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND substr(name, 1, 7) <> 'sqlite_' AND substr(name, 1, 4) <> '_cf_'";

const TYPE_ORDER: Record<SchemaObjectType, number> = { table: 0, index: 1, view: 2, trigger: 3 };

/** Turns sqlite_master rows into a Schema, leaving out the ledger tables named. */
export function makeSchema(
	rows: readonly SchemaRow[],
	excludeTables: readonly string[] = [],
): Schema {
	const excluded = new Set(excludeTables.map((t) => t.toLowerCase()));
	const objects = rows
		.filter((row) => row.sql && row.type in TYPE_ORDER && !excluded.has(row.tbl_name.toLowerCase()))
		.map((row) => ({
			type: row.type as SchemaObjectType,
			name: row.name,
			table: row.tbl_name,
			sql: formatCreateStatement(row.sql as string),
		}));
	return { objects: sortObjects(objects) };
}

function sortObjects(objects: SchemaObject[]): SchemaObject[] {
	return objects.sort(
		(a, b) =>
			TYPE_ORDER[a.type] - TYPE_ORDER[b.type] ||
			compareAsLocale(a.name.toLowerCase(), b.name.toLowerCase()),
	);
}

const NO_SPACE_BEFORE = new Set([",", ")", ".", ";"]);
const NO_SPACE_AFTER = new Set(["(", "."]);

/**
 * Canonical text of a CREATE statement: comments dropped, whitespace normalised, tables with one
 * column or constraint per line, trigger bodies with one statement per line.
 */
export function formatCreateStatement(sql: string): string {
	const tokens = tokenizeSql(sql).filter((t) => !isCommentToken(t));
	while (tokens.at(-1)?.kind === "semicolon") tokens.pop();
	const head = tokens.slice(0, 3).map((t) => t.text.toUpperCase());
	const isTable = head.includes("TABLE") && !head.includes("VIRTUAL");
	const isTrigger = head.includes("TRIGGER");
	let out = "";
	let depth = 0;
	let inBody = false;
	let breakNext = false;
	let previous: SqlToken | undefined;
	for (const token of tokens) {
		const word = token.kind === "keyword" ? token.text.toUpperCase() : undefined;
		const text = word ?? token.text;
		let separator = previous === undefined ? "" : " ";
		if (previous && (NO_SPACE_BEFORE.has(text) || NO_SPACE_AFTER.has(previous.text)))
			separator = "";
		if (isTable && text === ")" && depth === 1) separator = "\n";
		// The body's END follows its last `;` (sqlite3_complete()); a CASE's END or a column named end does not.
		if (inBody && word === "END" && previous?.kind === "semicolon") {
			separator = "\n";
			inBody = false;
		} else if (breakNext) separator = "\n\t";
		breakNext = false;
		out += separator + text;
		if (text === "(") {
			depth++;
			breakNext = isTable && depth === 1;
		} else if (text === ")") depth = Math.max(0, depth - 1);
		else if (isTable && text === "," && depth === 1) breakNext = true;
		else if (isTrigger && word === "BEGIN" && !inBody) {
			inBody = true;
			breakNext = true;
		} else if (inBody && token.kind === "semicolon") breakNext = true;
		previous = token;
	}
	return out;
}

/** The committed snapshot file: every object, sorted, each ending in `;`. */
export function renderSnapshot(schema: Schema, header: readonly string[]): string {
	const lines = header.map((h) => `-- ${h}`);
	const body = schema.objects.map((o) => `${o.sql};`).join("\n\n");
	return `${lines.join("\n")}\n\n${body}${body ? "\n" : ""}`;
}

/** Reads a snapshot file back into a Schema. */
export function parseSnapshot(text: string): Schema {
	const objects: SchemaObject[] = [];
	for (const statement of splitStatements(text.replace(/\r\n?/g, "\n"))) {
		const identity = identifyCreate(statement.tokens);
		if (!identity) continue;
		objects.push({ ...identity, sql: formatCreateStatement(statement.text) });
	}
	return { objects: sortObjects(objects) };
}

function identifyCreate(tokens: readonly SqlToken[]): Omit<SchemaObject, "sql"> | undefined {
	const words = tokens.map((t) => t.text.toUpperCase());
	if (words[0] !== "CREATE") return undefined;
	let i = 1;
	if (words[i] === "TEMP" || words[i] === "TEMPORARY") i++;
	if (words[i] === "UNIQUE" || words[i] === "VIRTUAL") i++;
	const kind = words[i]?.toLowerCase();
	if (kind !== "table" && kind !== "index" && kind !== "view" && kind !== "trigger")
		return undefined;
	i++;
	if (words[i] === "IF" && words[i + 1] === "NOT" && words[i + 2] === "EXISTS") i += 3;
	let nameToken = tokens[i];
	if (tokens[i + 1]?.text === ".") nameToken = tokens[i + 2];
	const name = nameToken?.value ?? "";
	let table = name;
	if (kind === "index" || kind === "trigger") {
		const on = words.indexOf("ON", i);
		table = on >= 0 ? (tokens[on + 1]?.value ?? name) : name;
	}
	return { type: kind, name, table };
}

export interface SchemaDifference {
	kind: "added" | "removed" | "changed";
	type: SchemaObjectType;
	name: string;
	/** Lines prefixed with `-` (expected) and `+` (actual). */
	diff: string[];
}

const keyOf = (o: SchemaObject) => `${o.type} ${o.name.toLowerCase()}`;

/** Object-by-object comparison; `expected` is the reference (snapshot or replay). */
export function diffSchema(expected: Schema, actual: Schema): SchemaDifference[] {
	const before = new Map(expected.objects.map((o) => [keyOf(o), o]));
	const after = new Map(actual.objects.map((o) => [keyOf(o), o]));
	const out: SchemaDifference[] = [];
	for (const [key, want] of before) {
		const got = after.get(key);
		if (!got)
			out.push({ kind: "removed", type: want.type, name: want.name, diff: prefix("-", want.sql) });
		else if (got.sql !== want.sql) {
			out.push({
				kind: "changed",
				type: want.type,
				name: want.name,
				diff: diffLines(want.sql, got.sql),
			});
		}
	}
	for (const [key, got] of after) {
		if (!before.has(key))
			out.push({ kind: "added", type: got.type, name: got.name, diff: prefix("+", got.sql) });
	}
	return out;
}

const prefix = (mark: string, text: string) => text.split("\n").map((l) => `${mark} ${l}`);

/** A small LCS line diff: schema objects are a few dozen lines at most. */
export function diffLines(a: string, b: string): string[] {
	const x = a.split("\n");
	const y = b.split("\n");
	const lcs: number[][] = Array.from({ length: x.length + 1 }, () =>
		new Array<number>(y.length + 1).fill(0),
	);
	for (let i = x.length - 1; i >= 0; i--) {
		for (let j = y.length - 1; j >= 0; j--) {
			const row = lcs[i] as number[];
			row[j] =
				x[i] === y[j]
					? (lcs[i + 1]?.[j + 1] ?? 0) + 1
					: Math.max(lcs[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
		}
	}
	const out: string[] = [];
	let i = 0;
	let j = 0;
	while (i < x.length || j < y.length) {
		if (i < x.length && j < y.length && x[i] === y[j]) {
			out.push(`  ${x[i]}`);
			i++;
			j++;
		} else if (
			j < y.length &&
			(i >= x.length || (lcs[i]?.[j + 1] ?? 0) >= (lcs[i + 1]?.[j] ?? 0))
		) {
			out.push(`+ ${y[j]}`);
			j++;
		} else {
			out.push(`- ${x[i]}`);
			i++;
		}
	}
	return out;
}

export function formatSchemaDifferences(differences: readonly SchemaDifference[]): string {
	return differences
		.map((d) => `${d.type} ${d.name} ${d.kind}:\n${d.diff.map((l) => `    ${l}`).join("\n")}`)
		.join("\n");
}
