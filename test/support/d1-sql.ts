// Pure SQL helpers for the loopback D1: a SQLite-shaped tokenizer, statement splitting, and an
// emulation of the authorizer D1 runs (workerd src/workerd/util/sqlite.c++, SqliteDatabase::isAuthorized),
// because better-sqlite3 does not expose sqlite3_set_authorizer.

export type TokenKind =
	| "space"
	| "comment"
	| "string"
	| "blob"
	| "ident"
	| "word"
	| "number"
	| "param"
	| "semi"
	| "punct";

export interface Token {
	kind: TokenKind;
	text: string;
	start: number;
	end: number;
}

export interface StatementSegment {
	// Text from the first non-whitespace character up to and including the terminating `;`.
	text: string;
	start: number;
	end: number;
	empty: boolean;
}

export type Authorization = { ok: true } | { ok: false; message: string };

// workerd SqlStorage::allowTransactions(): the tailored error D1 returns for BEGIN/SAVEPOINT & co.
export const D1_TRANSACTION_MESSAGE =
	"To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";

// SQLITE_AUTH without a tailored error surfaces as sqlite3_errmsg() plus the primary code name.
export const D1_NOT_AUTHORIZED_MESSAGE = "not authorized: SQLITE_AUTH";

// workerd setupSecurity(): SQLITE_LIMIT_SQL_LENGTH and SQLITE_LIMIT_VARIABLE_NUMBER.
export const D1_MAX_STATEMENT_BYTES = 100_000;
export const D1_MAX_BOUND_PARAMETERS = 100;

type PragmaSignature =
	| "no-arg"
	| "boolean"
	| "object-name"
	| "optional-object-name"
	| "null-or-number"
	| "null-number-or-object-name";

// workerd ALLOWED_PRAGMAS (plus table_list / table_info / table_xinfo handled inline there).
const ALLOWED_PRAGMAS: ReadonlyMap<string, PragmaSignature> = new Map([
	["data_version", "no-arg"],
	["case_sensitive_like", "boolean"],
	["foreign_keys", "boolean"],
	["defer_foreign_keys", "boolean"],
	["ignore_check_constraints", "boolean"],
	["legacy_alter_table", "boolean"],
	["recursive_triggers", "boolean"],
	["reverse_unordered_selects", "boolean"],
	["foreign_key_check", "optional-object-name"],
	["foreign_key_list", "object-name"],
	["index_info", "object-name"],
	["index_list", "object-name"],
	["index_xinfo", "object-name"],
	["quick_check", "null-number-or-object-name"],
	["optimize", "null-or-number"],
	["table_list", "no-arg"],
	["table_info", "object-name"],
	["table_xinfo", "object-name"],
]);

const ALLOWED_VIRTUAL_TABLE_MODULES = new Set(["fts5", "fts5vocab"]);

const isSpace = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\f" || c === "\r";
const isDigit = (c: string) => c >= "0" && c <= "9";
const isIdStart = (c: string) => /[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80;
const isIdChar = (c: string) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80;

// Splits SQL into tokens the way SQLite's tokenizer draws boundaries (enough for splitting and
// authorization; it does not distinguish keywords from identifiers).
export function tokenizeSql(sql: string): Token[] {
	const tokens: Token[] = [];
	let i = 0;
	const push = (kind: TokenKind, end: number) => {
		tokens.push({ kind, text: sql.slice(i, end), start: i, end });
		i = end;
	};
	const until = (from: number, close: string, doubled: boolean): number => {
		let j = from;
		while (j < sql.length) {
			if (sql[j] === close) {
				if (doubled && sql[j + 1] === close) {
					j += 2;
					continue;
				}
				return j + 1;
			}
			j++;
		}
		return sql.length;
	};
	while (i < sql.length) {
		const c = sql[i] as string;
		const next = sql[i + 1] ?? "";
		if (isSpace(c)) {
			let j = i + 1;
			while (j < sql.length && isSpace(sql[j] as string)) j++;
			push("space", j);
		} else if (c === "-" && next === "-") {
			const nl = sql.indexOf("\n", i);
			push("comment", nl === -1 ? sql.length : nl + 1);
		} else if (c === "/" && next === "*") {
			const close = sql.indexOf("*/", i + 2);
			push("comment", close === -1 ? sql.length : close + 2);
		} else if (c === "'") {
			push("string", until(i + 1, "'", true));
		} else if ((c === "x" || c === "X") && next === "'") {
			push("blob", until(i + 2, "'", false));
		} else if (c === '"' || c === "`") {
			push("ident", until(i + 1, c, true));
		} else if (c === "[") {
			push("ident", until(i + 1, "]", false));
		} else if (c === ";") {
			push("semi", i + 1);
		} else if (c === "?") {
			let j = i + 1;
			while (j < sql.length && isDigit(sql[j] as string)) j++;
			push("param", j);
		} else if ((c === ":" || c === "@" || c === "$") && isIdChar(next)) {
			let j = i + 1;
			while (j < sql.length && isIdChar(sql[j] as string)) j++;
			push("param", j);
		} else if (isDigit(c) || (c === "." && isDigit(next))) {
			let j = i + 1;
			while (j < sql.length && /[0-9A-Za-z_.]/.test(sql[j] as string)) {
				if ((sql[j] === "e" || sql[j] === "E") && /[+-]/.test(sql[j + 1] ?? "")) j++;
				j++;
			}
			push("number", j);
		} else if (isIdStart(c)) {
			let j = i + 1;
			while (j < sql.length && isIdChar(sql[j] as string)) j++;
			push("word", j);
		} else {
			push("punct", i + 1);
		}
	}
	return tokens;
}

export const isSignificant = (t: Token) => t.kind !== "space" && t.kind !== "comment";

// Cuts SQL at every top-level `;`. A cut inside a trigger body is repaired by the executor, which
// joins segments while SQLite answers "incomplete input" (the parser decides, as in D1).
export function splitSqlSegments(sql: string): StatementSegment[] {
	const segments: StatementSegment[] = [];
	let start = 0;
	let significant = false;
	const close = (end: number) => {
		let s = start;
		while (s < end && isSpace(sql[s] as string)) s++;
		segments.push({ text: sql.slice(s, end), start: s, end, empty: !significant });
		start = end;
		significant = false;
	};
	for (const token of tokenizeSql(sql)) {
		if (token.kind === "semi") close(token.end);
		else if (isSignificant(token)) significant = true;
	}
	if (start < sql.length) close(sql.length);
	return segments;
}

// Removes SQLite quoting from an identifier or string token.
export function dequote(text: string): string {
	const q = text[0];
	if (q === "[") return text.slice(1, text.endsWith("]") ? -1 : undefined);
	if (q === "'" || q === '"' || q === "`") {
		const body = text.slice(1, text.length > 1 && text.endsWith(q) ? -1 : undefined);
		return body.split(`${q}${q}`).join(q);
	}
	return text;
}

// workerd SqlStorage::isAllowedName(): D1 reserves every `_cf_` name (e.g. `_cf_KV`).
export const isAllowedName = (name: string) => !name.startsWith("_cf_");

// Counts distinct bind parameters the way sqlite3_bind_parameter_count() would.
export function countParameters(tokens: Token[]): number {
	let count = 0;
	const named = new Set<string>();
	for (const t of tokens) {
		if (t.kind !== "param") continue;
		if (t.text === "?") count++;
		else if (t.text.startsWith("?")) count = Math.max(count, Number(t.text.slice(1)));
		else if (!named.has(t.text)) {
			named.add(t.text);
			count++;
		}
	}
	return count;
}

const upper = (t: Token | undefined) => (t?.kind === "word" ? t.text.toUpperCase() : "");

function authorizePragma(words: Token[]): Authorization {
	const deny = { ok: false as const, message: D1_NOT_AUTHORIZED_MESSAGE };
	let i = 1;
	let name = words[i];
	if (words[i + 1]?.text === ".") {
		// Only "main" may be named; temp and attached schemas are refused.
		if (name === undefined || dequote(name.text).toLowerCase() !== "main") return deny;
		i += 2;
		name = words[i];
	}
	if (name === undefined) return deny;
	// SQLite passes the pragma name to the authorizer as written; workerd compares case-sensitively.
	const pragma = dequote(name.text);
	const signature = ALLOWED_PRAGMAS.get(pragma);
	if (signature === undefined) return deny;
	const rest = words.slice(i + 1).filter((t) => t.text !== "(" && t.text !== ")" && t.text !== "=");
	const value =
		rest.length === 0
			? undefined
			: rest[0]?.text === "-" || rest[0]?.text === "+"
				? rest.map((t) => t.text).join("")
				: dequote(rest[0]?.text ?? "");
	switch (signature) {
		case "no-arg":
			return value === undefined ? { ok: true } : deny;
		case "boolean":
			return value === undefined || /^(true|false|yes|no|on|off|1|0)/i.test(value)
				? { ok: true }
				: deny;
		case "object-name":
			return value !== undefined && isAllowedName(value) ? { ok: true } : deny;
		case "optional-object-name":
			return value === undefined || isAllowedName(value) ? { ok: true } : deny;
		case "null-or-number":
			return value === undefined || /^[+-]?\d+$/.test(value) ? { ok: true } : deny;
		case "null-number-or-object-name":
			return value === undefined || /^\d+$/.test(value) || isAllowedName(value)
				? { ok: true }
				: deny;
	}
}

// Decides, like D1's SQLite authorizer, whether one statement may run. Approximations: `_cf_`
// is checked on every identifier (not only table names) and the function allow-list is not applied.
export function authorizeStatement(tokens: Token[]): Authorization {
	const words = tokens.filter(isSignificant);
	const deny = { ok: false as const, message: D1_NOT_AUTHORIZED_MESSAGE };
	let first = 0;
	if (upper(words[0]) === "EXPLAIN") {
		first = upper(words[1]) === "QUERY" && upper(words[2]) === "PLAN" ? 3 : 1;
	}
	const verb = upper(words[first]);
	if (["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"].includes(verb)) {
		return { ok: false, message: D1_TRANSACTION_MESSAGE };
	}
	if (verb === "ATTACH" || verb === "DETACH") return deny;
	if (verb === "PRAGMA") return authorizePragma(words.slice(first));
	if (verb === "CREATE") {
		const kind = upper(words[first + 1]);
		if (kind === "TEMP" || kind === "TEMPORARY") return deny;
		if (kind === "VIRTUAL") {
			const using = words.findIndex((t) => upper(t) === "USING");
			const module = words[using + 1];
			if (using === -1 || module === undefined) return deny;
			if (!ALLOWED_VIRTUAL_TABLE_MODULES.has(dequote(module.text).toLowerCase())) return deny;
		}
	}
	for (const t of words) {
		if ((t.kind === "word" || t.kind === "ident") && !isAllowedName(dequote(t.text))) return deny;
	}
	return { ok: true };
}

// Byte offset of `index` in `text`, as sqlite3_error_offset() counts (UTF-8).
export const byteOffset = (text: string, index: number) =>
	Buffer.byteLength(text.slice(0, index), "utf8");
