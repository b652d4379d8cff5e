import { ROW_COUNTS_TABLE, ROW_GUARD_TABLE } from "./ledger.ts";
import { quoteIdentifier, sqlString } from "./literals.ts";
import type { Schema } from "./schema.ts";
import { identifierName, isWord, splitStatements } from "./sql.ts";

/** A table whose rows a migration can lose without naming it, and why. */
export interface GuardedTable {
	table: string;
	/** The dropped or emptied table whose ON DELETE CASCADE reaches it. */
	via: string;
}

const lower = (name: string) => name.toLowerCase();

/** Tables a migration drops (a rebuild drops the old one) or deletes from, and tables it names. */
export function parseTouchedTables(sql: string): { emptied: Set<string>; named: Set<string> } {
	const emptied = new Set<string>();
	const named = new Set<string>();
	for (const statement of splitStatements(sql)) {
		const t = statement.tokens;
		if (isWord(t[0], "DROP") && isWord(t[1], "TABLE")) {
			const at = isWord(t[2], "IF") ? 4 : 2;
			const name = identifierName(t[at]);
			if (name) {
				emptied.add(lower(name));
				named.add(lower(name));
			}
		} else if (isWord(t[0], "DELETE") && isWord(t[1], "FROM")) {
			const name = identifierName(t[2]);
			if (name) {
				emptied.add(lower(name));
				named.add(lower(name));
			}
		}
		// Tables the migration creates or renames are its own to fill: their counts are its business.
		if (isWord(t[0], "CREATE") && t.some((x) => isWord(x, "TABLE"))) {
			const i = t.findIndex((x) => isWord(x, "TABLE"));
			const at = isWord(t[i + 1], "IF") ? i + 4 : i + 1;
			const name = identifierName(t[at]);
			if (name) named.add(lower(name));
		}
		if (isWord(t[0], "ALTER") && isWord(t[1], "TABLE")) {
			const name = identifierName(t[2]);
			if (name) named.add(lower(name));
			const to = t.findIndex((x) => isWord(x, "TO"));
			const renamed = to > 0 ? identifierName(t[to + 1]) : undefined;
			if (renamed) named.add(lower(renamed));
		}
	}
	return { emptied, named };
}

/** Child → parent edges with ON DELETE CASCADE, read from the tables' CREATE statements. */
export function cascadeEdges(schema: Schema): { child: string; parent: string }[] {
	const edges: { child: string; parent: string }[] = [];
	for (const object of schema.objects) {
		if (object.type !== "table") continue;
		const pattern = /REFERENCES\s+["`[]?([A-Za-z_][\w$]*)["`\]]?\s*(?:\([^)]*\))?([^,]*)/gi;
		for (const match of object.sql.matchAll(pattern)) {
			if (/ON\s+DELETE\s+CASCADE/i.test(match[2] ?? "")) {
				edges.push({ child: lower(object.name), parent: lower(match[1] ?? "") });
			}
		}
	}
	return edges;
}

/**
 * The tables whose rows `sql` can lose without naming them: every table an ON DELETE CASCADE
 * chain reaches from a table it drops or deletes from (D1 always enforces foreign keys, and a
 * DROP TABLE's implicit DELETE fires the cascades even under defer_foreign_keys:
 * sqlite.org/foreignkeys.html §5).
 */
export function planRowGuard(sql: string, schema: Schema): GuardedTable[] {
	const { emptied, named } = parseTouchedTables(sql);
	if (emptied.size === 0) return [];
	const edges = cascadeEdges(schema);
	const found = new Map<string, string>();
	const queue = [...emptied].map((t) => ({ table: t, root: t }));
	while (queue.length) {
		const { table, root } = queue.shift() as { table: string; root: string };
		for (const e of edges) {
			if (e.parent !== table || found.has(e.child) || emptied.has(e.child)) continue;
			found.set(e.child, root);
			queue.push({ table: e.child, root });
		}
	}
	const actual = new Map(
		schema.objects.filter((o) => o.type === "table").map((o) => [lower(o.name), o.name]),
	);
	return [...found]
		.filter(([child]) => !named.has(child))
		.map(([child, via]) => ({ table: actual.get(child) ?? child, via: actual.get(via) ?? via }));
}

/** Counts taken in the request before the migration (the fence technique: fails it atomically). */
export function rowCountsBeforeSql(guarded: readonly GuardedTable[]): string {
	if (guarded.length === 0) return "";
	return [
		`DELETE FROM ${ROW_COUNTS_TABLE};`,
		...guarded.map(
			(g) =>
				`INSERT INTO ${ROW_COUNTS_TABLE} (tbl, n) SELECT ${sqlString(g.table)}, count(*) FROM ${quoteIdentifier(g.table)};`,
		),
	].join("\n");
}

/** After the migration: fewer rows in a guarded table fails the whole request. */
export function rowCountsAfterSql(guarded: readonly GuardedTable[]): string {
	if (guarded.length === 0) return "";
	return [
		...guarded.map(
			(g) =>
				`INSERT INTO ${ROW_GUARD_TABLE} (rows_lost) SELECT tbl FROM ${ROW_COUNTS_TABLE} WHERE tbl = ${sqlString(g.table)} AND n > (SELECT count(*) FROM ${quoteIdentifier(g.table)});`,
		),
		`DELETE FROM ${ROW_COUNTS_TABLE};`,
	].join("\n");
}
