// Pure SQL helpers for the loopback D1: a SQLite-shaped tokenizer, statement splitting, and an
// emulation of the authorizer D1 runs (workerd src/workerd/util/sqlite.c++, SqliteDatabase::isAuthorized),
// because better-sqlite3 does not expose sqlite3_set_authorizer.
import {
	D1_NOT_AUTHORIZED,
	D1_SQLITE_LIMITS,
	D1_TRANSACTION_MESSAGE,
	findD1Refusal,
	isD1AllowedName,
} from "../../ci/migrations/d1-rules.ts";

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

export { D1_TRANSACTION_MESSAGE };

// SQLITE_AUTH without a tailored error surfaces as sqlite3_errmsg() plus the primary code name.
export const D1_NOT_AUTHORIZED_MESSAGE = "not authorized: SQLITE_AUTH";

// workerd setupSecurity(): SQLITE_LIMIT_SQL_LENGTH and SQLITE_LIMIT_VARIABLE_NUMBER.
export const D1_MAX_STATEMENT_BYTES = D1_SQLITE_LIMITS.sqlLength;
export const D1_MAX_BOUND_PARAMETERS = D1_SQLITE_LIMITS.variableNumber;

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

// workerd SqlStorageRegulator::isAllowedName() (api/sql.c++): D1 reserves every `_cf_` name, any case.
export const isAllowedName = isD1AllowedName;

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

// Decides, like D1's SQLite authorizer and parse-time limits, whether one statement may run;
// the rules live in ci/migrations/d1-rules.ts (read from workerd util/sqlite.c++).
export function authorizeStatement(text: string): Authorization {
	const found = findD1Refusal(text);
	if (found === undefined) return { ok: true };
	const { refusal } = found;
	if (refusal.rule === "transaction") return { ok: false, message: D1_TRANSACTION_MESSAGE };
	if (refusal.message === D1_NOT_AUTHORIZED)
		return { ok: false, message: D1_NOT_AUTHORIZED_MESSAGE };
	// A limit SQLite enforces while parsing fails as a plain SQLITE_ERROR.
	return { ok: false, message: `${refusal.message}: SQLITE_ERROR` };
}

// Byte offset of `index` in `text`, as sqlite3_error_offset() counts (UTF-8).
export const byteOffset = (text: string, index: number) =>
	Buffer.byteLength(text.slice(0, index), "utf8");
